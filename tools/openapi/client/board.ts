// A deal board written against the TypeScript types generated from openapi/openapi.json
// (tests/test_openapi_clients.py generates crm.d.ts next to it and compiles this with `tsc --strict`).
import type { components, paths } from "./crm";

type Deal = components["schemas"]["DealReadWithRelated"];
type DealPage = paths["/v1/deals"]["get"]["responses"]["200"]["content"]["application/json"];
type Summary = paths["/v1/pipelines/{id}/summary"]["get"]["responses"]["200"]["content"]["application/json"];
type Problem = components["schemas"]["Problem"];
type NewContact = paths["/v1/contacts"]["post"]["requestBody"]["content"]["application/json"];
type DealQuery = NonNullable<paths["/v1/deals"]["get"]["parameters"]["query"]>;

export interface Column {
  stage: string;
  total: string;
  cards: { title: string; contact: string | null; owner: string | null }[];
}

async function call<T>(base: string, token: string, path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(base + path, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
  });
  if (!response.ok) {
    const problem = (await response.json()) as Problem;
    throw new Error(`${problem.status} ${problem.title}: ${problem.detail}`);
  }
  return (await response.json()) as T;
}

export async function board(base: string, token: string, pipelineId: string): Promise<Column[]> {
  const query: DealQuery = { pipeline_id: pipelineId, status: "open", expand: ["contact", "owner"], limit: 200 };
  const params = new URLSearchParams({
    pipeline_id: String(query.pipeline_id), status: String(query.status), expand: (query.expand ?? []).join(","),
    limit: String(query.limit),
  });
  const [summary, page] = await Promise.all([
    call<Summary>(base, token, `/v1/pipelines/${pipelineId}/summary`),
    call<DealPage>(base, token, `/v1/deals?${params}`),
  ]);
  return summary.stages.map((stage) => ({
    stage: stage.name,
    total: `${stage.value.amount} ${stage.value.currency}`,
    cards: page.data
      .filter((deal: Deal) => deal.stage_id === stage.stage_id)
      .map((deal: Deal) => ({
        title: deal.title,
        contact: deal.expanded?.contact ? [deal.expanded.contact.first_name, deal.expanded.contact.last_name].join(" ") : null,
        owner: deal.expanded?.owner?.name ?? null,
      })),
  }));
}

export async function addContact(base: string, token: string): Promise<string> {
  const body: NewContact = { first_name: "Ana", email: "ana@example.com" };
  const made = await call<components["schemas"]["ContactRead"]>(base, token, "/v1/contacts", {
    method: "POST", body: JSON.stringify(body),
  });
  return made.id;
}

type Changes = paths["/v1/changes"]["get"]["responses"]["200"]["content"]["application/json"];
type Timeline = paths["/v1/contacts/{record_id}/timeline"]["get"]["responses"]["200"]["content"]["application/json"];

// The feed and timelines are unions told apart by `object_type` / `kind`: narrowing gives each record's own type.
export async function movedDeals(base: string, token: string): Promise<{ deal: string; stage: string }[]> {
  const page = await call<Changes>(base, token, "/v1/changes?types=deal");
  return page.data.flatMap((change) =>
    change.object_type === "deal" && change.type === "deal.stage_changed" && "stage_id" in change.data.object
      ? [{ deal: change.object_id, stage: change.data.object.stage_id }]
      : [],
  );
}

export async function openTasks(base: string, token: string, contactId: string): Promise<string[]> {
  const page = await call<Timeline>(base, token, `/v1/contacts/${contactId}/timeline`);
  return page.data.flatMap((entry) => (entry.kind === "activity" && entry.data.done_at === null ? [entry.data.subject] : []));
}
