"""What the seeded dataset lacks for three reports, written once into the big org with SQL before the reports
are measured: without it `rotting`, `emails` and `products` answer an empty result in under a millisecond, and
their ratio measures the request, not the report.

- rotting: every open stage of the org's pipelines gets `rotting_days` (30), so deals idle longer rot;
- emails: one mailbox (never synced: no server) and EMAILS_PER_CONTACT mails for each of the org's first
  EMAIL_CONTACTS contacts, half received and half sent, spread over the last two years;
- products: PRODUCTS products, and one to three line items on each won deal of the org.

Idempotent: a dataset that already has them is left as it is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.harness import Run

EMAIL_CONTACTS = 50_000
EMAILS_PER_CONTACT = 4
PRODUCTS = 40


async def ensure(run: Run) -> dict[str, Any]:
    org = run.org_id
    written: dict[str, Any] = {}
    written["stages_with_rotting_days"] = int((await run.sql(
        "WITH u AS (UPDATE pipeline_stages SET rotting_days = 30 WHERE org_id = $1 AND kind = 'open' "
        "AND rotting_days IS NULL RETURNING 1) SELECT count(*) FROM u", org))[0][0])
    if not (await run.sql("SELECT 1 FROM mailboxes WHERE org_id = $1 AND email = 'sales@bench-reports.example.com'", org)):
        owner = (await run.sql("SELECT owner_id FROM contacts WHERE org_id = $1 GROUP BY owner_id "
                               "ORDER BY count(*) DESC LIMIT 1", org))[0][0]
        box = (await run.sql("""
            INSERT INTO mailboxes (org_id, id, email, shared, private, owner_id, auth, imap, smtp, sealed_secrets,
                                   sync_since_days, rate_per_minute, version)
            VALUES ($1, gen_random_uuid(), 'sales@bench-reports.example.com', true, false, $2, 'password',
                    '{"host": "imap.bench-reports.example.com", "port": 993, "ssl": true, "username": "sales"}',
                    '{"host": "smtp.bench-reports.example.com", "port": 587, "starttls": true}', '', 30, 60, 1)
            RETURNING id""", org, owner))[0][0]
        written["emails"] = int((await run.sql(f"""
            WITH c AS (SELECT id, email FROM contacts WHERE org_id = $1 AND deleted_at IS NULL
                       ORDER BY id LIMIT {EMAIL_CONTACTS}),
            ins AS (
                INSERT INTO emails (org_id, id, mailbox_id, version, direction, status, subject, from_address,
                                    to_addresses, cc_addresses, sent_at, message_id, "references", thread_id,
                                    contact_ids, lead_ids, deal_ids, body_text)
                SELECT $1, gen_random_uuid(), $2, 1, CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
                       CASE WHEN g % 2 = 0 THEN 'received' ELSE 'sent' END, 'About the offer ' || g,
                       coalesce(c.email, 'client@bench-reports.example.org'),
                       ARRAY['sales@bench-reports.example.com'], '{{}}',
                       now() - ((abs(hashtext(c.id::text || g)) % 730) || ' days')::interval,
                       '<' || c.id || '-' || g || '@bench-reports.example.org>', '{{}}', c.id, ARRAY[c.id],
                       '{{}}', '{{}}', 'Hello, about the offer.'
                FROM c CROSS JOIN generate_series(1, {EMAILS_PER_CONTACT}) g
                RETURNING 1)
            SELECT count(*) FROM ins""", org, box))[0][0])
    if not (await run.sql("SELECT 1 FROM deal_line_items WHERE org_id = $1 LIMIT 1", org)):
        await run.sql(f"""
            INSERT INTO products (org_id, id, sku, name, unit, prices, tax_rate, active, version)
            SELECT $1, gen_random_uuid(), 'BENCH-' || g, 'Bench product ' || g, 'pc', '[]', 20, true, 1
            FROM generate_series(1, {PRODUCTS}) g
            WHERE NOT EXISTS (SELECT 1 FROM products WHERE org_id = $1 AND sku LIKE 'BENCH-%')""", org)
        written["line_items"] = int((await run.sql(f"""
            WITH p AS (SELECT id, name, row_number() OVER (ORDER BY id) - 1 AS n FROM products
                       WHERE org_id = $1 AND sku LIKE 'BENCH-%'),
            d AS (SELECT id, currency, abs(hashtext(id::text)) AS h FROM deals
                  WHERE org_id = $1 AND status = 'won' AND deleted_at IS NULL),
            ins AS (
                INSERT INTO deal_line_items (org_id, id, deal_id, product_id, name, quantity, unit_price_amount,
                                             currency, discount_percent, tax_rate, amount, amount_with_tax, position,
                                             version)
                SELECT $1, gen_random_uuid(), d.id, p.id, p.name, 1 + g, 100 + p.n * 10, d.currency, 0, 20,
                       (1 + g) * (100 + p.n * 10), (1 + g) * (100 + p.n * 10) * 1.2, g, 1
                FROM d CROSS JOIN LATERAL generate_series(0, d.h % 3) g
                JOIN p ON p.n = (d.h + g) % {PRODUCTS}
                RETURNING 1)
            SELECT count(*) FROM ins""", org))[0][0])
    return written
