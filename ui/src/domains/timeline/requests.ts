// One request, one row: a service may log one request several times (nginx's access line,
// then the service's own "Invalid API key" and "Request completed" lines, as Jelmore does), and
// the timeline shows them as one row that opens to its parts. Display only: every line stays
// stored and exported as it is.
import type { TimelineEvent } from '../../gen/TimelineEvent';
import type { Kind } from '../../gen/Kind';
import type { Source } from '../../gen/Source';

/** A row of the timeline: the line it is shown by, and every line of the request (one for
 * most rows), newest first. */
export interface Row {
  lead: TimelineEvent;
  parts: TimelineEvent[];
}

/** Lines of one request are written within this long of each other (microseconds). */
export const SAME_REQUEST_US = 2_000_000;
/** How many rows back a line may join: a busy second holds many requests. */
const LOOK_BACK = 40;
/** Kinds that describe a request; markers, unparsed lines and the console's notes stand alone. */
const REQUEST_KINDS = new Set<Kind>(['auth', 'request', 'rate_limit']);
/** Which line leads a row: the proxy's sees the client as the network does. */
const LEAD_ORDER: Source[] = ['proxy', 'access'];

function rank(e: TimelineEvent): number {
  const at = LEAD_ORDER.indexOf(e.source);
  return (at < 0 ? LEAD_ORDER.length : at) * 2 + (e.status === null ? 1 : 0);
}

function statusOf(row: Row): number | null {
  return row.parts.find((p) => p.status !== null)?.status ?? null;
}

/** Whether `e` can be another line of the request `row` shows: the same instance, client
 * address and path, no status that contradicts, within two seconds, and not a second line of
 * a kind the row already has (two such lines are two requests). */
function joins(row: Row, e: TimelineEvent): boolean {
  const first = row.parts[0]!;
  if (!REQUEST_KINDS.has(e.kind) || e.seq < 0 || !REQUEST_KINDS.has(first.kind) || first.seq < 0) return false;
  if (e.instance !== first.instance || !e.ip || e.ip !== first.ip || !e.path) return false;
  if (!row.parts.some((p) => p.path === e.path)) return false;
  if (Math.abs(first.time_us - e.time_us) > SAME_REQUEST_US) return false;
  const status = statusOf(row);
  if (status !== null && e.status !== null && status !== e.status) return false;
  return !row.parts.some((p) => p.source === e.source && p.kind === e.kind && (p.message ?? '') === (e.message ?? '') && p.status === e.status);
}

/** Lines no format understood that one log wrote in one burst (a crash's backtrace on a
 * service's stderr, one line per frame) read as one message. */
const SAME_BURST_US = 1_000_000;

/** The flag on lines about Gatehouse's own requests (its checks' probes and bursts). */
const PROBE = 32;

/** Whether `e` continues the burst `row` shows (the row just before it): lines no format
 * understood, or lines about Gatehouse's own requests (a compliance run's rate-limit burst is
 * hundreds of them), from one log within a second of each other. */
function continues(row: Row, e: TimelineEvent): boolean {
  const last = row.parts[row.parts.length - 1]!;
  const unparsed = e.kind === 'unparsed' && row.lead.kind === 'unparsed';
  const ours = (e.flags & PROBE) !== 0 && (row.lead.flags & PROBE) !== 0 && e.kind === row.lead.kind;
  return (
    (unparsed || ours) &&
    e.instance === last.instance &&
    e.source === last.source &&
    Math.abs(last.time_us - e.time_us) <= SAME_BURST_US
  );
}

/** The rows of a page of events (newest first): each request's lines in one row, placed where
 * its newest line is, led by the proxy's line when there is one; a burst of lines no format
 * understood, from one log, is one row too. */
export function groupRequests(events: readonly TimelineEvent[]): Row[] {
  const rows: Row[] = [];
  for (const e of events) {
    const previous = rows[rows.length - 1];
    if (previous && continues(previous, e)) {
      previous.parts.push(e);
      continue;
    }
    let joined = false;
    if (REQUEST_KINDS.has(e.kind)) {
      for (let i = rows.length - 1; i >= Math.max(0, rows.length - LOOK_BACK); i--) {
        const row = rows[i]!;
        if (row.parts[0]!.time_us - e.time_us > SAME_REQUEST_US) break;
        if (joins(row, e)) {
          row.parts.push(e);
          if (rank(e) < rank(row.lead)) row.lead = e;
          joined = true;
          break;
        }
      }
    }
    if (!joined) rows.push({ lead: e, parts: [e] });
  }
  return rows;
}
