"""Operations that span areas, one module per flow, each in the caller's transaction: a stage deleted with its
deals moved, a stage changing kind, a pipeline deleted, a lead converted, a form submission taken in, an upsert
by external id, a user deactivated with their work handed over. The areas they combine never import one
another for it; a flow imports the areas.

The locking rule (every write that races another follows it; the locks themselves are in `app.domain.locks`):

1. Pipelines. A deal entering a pipeline (created in it, moved to one of its stages, restored into it) holds
   the pipeline's row FOR KEY SHARE and reads the stages after taking it. A change of the pipeline's
   structure (stage added, deleted, reordered or changing kind, the pipeline deleted, and any other write to
   the pipeline) holds the row FOR UPDATE. KEY SHARE conflicts with UPDATE only: moves run side by side, a
   structural change waits for the moves under way and holds new ones back until it commits, and a move
   that waited reads the stages as the change left them. So no deal lands in a deleted stage or pipeline,
   and a deal's status always matches the kind of its stage.
2. Find-or-create by a natural key. Twins (concurrent writes that would create the same record) first take
   a transaction-level advisory lock on the normalised key, then look: the first creates, the others find
   what it created. A person: the org, and the lower-case email and the E.164 phone, each a key (form
   intake, lead conversion). A partner's key: the org, the object type, the source and the external id
   (upsert). Retrying is therefore always safe: one record, and every answer a success.
3. What the organisation as a whole must keep (at least one active owner): the org's row FOR NO KEY UPDATE
   before counting, in every write that could take it away (demotion, deactivation). Inserts referencing the
   org (FOR KEY SHARE) are not held up.
4. Order. Org row, then advisory keys, then the pipeline row, then the records themselves (deals, leads,
   users). A flow takes what it needs in that order and never goes back up: no two flows wait on each other.
   Set-based writes (all deals of a stage) lock their rows in the one UPDATE that changes them.
"""
