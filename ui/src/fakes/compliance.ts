// Checklists: scorecards, items and what an operator does to them, checks, the report.
import type { ComplianceView } from '../gen/ComplianceView';
import type { ItemView } from '../gen/ItemView';
import { nowSeconds } from '../lib/clock';
import { HostError, type Host } from '../lib/host';
import type { FakeHost } from './index';

export interface ComplianceFake {
  /** The checklist items, across instances. */
  items: ItemView[];
}

type ComplianceCalls = Pick<
  Host,
  'compliance' | 'runChecks' | 'itemHistory' | 'assignItem' | 'signOffItem' | 'addItemEvidence' | 'waiveItem' | 'endWaiver' | 'exportCompliance' | 'setTlsMinimum'
>;

/** A checklist item as the core would describe it. */
export function sampleItem(id: string, overrides: Partial<ItemView> = {}): ItemView {
  return {
    instance: 'sekha-prod',
    id,
    section: 'Pre-deployment',
    text: `Item ${id}`,
    source: 'Security Checklist › Pre-Deployment',
    why: null,
    cadence: 'once',
    automated: true,
    state: 'pass',
    state_text: 'every check passes',
    checks: [],
    owner: null,
    due_at: null,
    overdue: false,
    signed_off_at: null,
    signed_off_by: null,
    evidence: [],
    waiver: null,
    reopened: false,
    ...overrides,
  };
}

/** The scorecards and items of `items`, as the core counts them, generated at `now` (Unix
 * seconds) from checks that ran two hours earlier. */
export function complianceOf(
  items: ItemView[],
  filter: string | null,
  instance: string | null,
  now: number = Math.floor(nowSeconds()),
): ComplianceView {
  const card = (list: ItemView[]) => {
    const c = { total: 0, passing: 0, failing: 0, due: 0, unknown: 0, waived: 0, score: 0 };
    for (const i of list) {
      c.total += 1;
      if (i.state === 'pass' || i.state === 'done') c.passing += 1;
      else if (i.state === 'fail') c.failing += 1;
      else if (i.state === 'due') c.due += 1;
      else if (i.state === 'unknown') c.unknown += 1;
      else c.waived += 1;
    }
    const counted = c.total - c.waived;
    c.score = counted === 0 ? 100 : Math.floor((c.passing * 100) / counted);
    return c;
  };
  const names = [...new Set(items.map((i) => i.instance))].filter((n) => instance === null || n === instance);
  const keep = (i: ItemView) =>
    filter === null || (filter === 'failing' ? i.state === 'fail' : filter === 'due' ? i.state === 'due' : i.state === 'waived');
  return {
    fleet: card(items.filter((i) => names.includes(i.instance))),
    instances: names.map((name) => {
      const mine = items.filter((i) => i.instance === name);
      return {
        instance: name,
        profile: 'sekha',
        template: 'Sekha security checklist',
        guide: 'Sekha security guide: Security Checklist',
        notice: null,
        scorecard: card(mine),
        items: mine.filter(keep),
        last_run: now - 2 * 3600,
        problem: null,
      };
    }),
    generated_at: now,
    tls_minimum: '1.3',
  };
}

export function complianceFake(host: FakeHost, now: number): ComplianceFake & ComplianceCalls {
  function update(instance: string, item: string, change: Partial<ItemView>): ItemView {
    host.items = host.items.map((i) => (i.instance === instance && i.id === item ? { ...i, ...change } : i));
    return host.items.find((i) => i.instance === instance && i.id === item)!;
  }
  return {
    items: [],
    async compliance(query) {
      host.calls.push(`compliance:${query.filter ?? ''}`);
      return complianceOf(host.items, query.filter, query.instance, now);
    },
    async runChecks(instance) {
      host.calls.push(`runChecks:${instance ?? ''}`);
      return { instances: 1, checks: 14, reopened: [], errors: [], notices: [] };
    },
    async itemHistory(instance, item) {
      host.calls.push(`itemHistory:${instance}:${item}`);
      return [{ at: now - 2 * 3600, kind: 'check', state: 'pass', detail: 'every check passes', actor: 'alice' }];
    },
    async assignItem(instance, item, owner, dueAt) {
      host.calls.push(`assignItem:${instance}:${item}:${owner}:${dueAt}`);
      return update(instance, item, { owner, due_at: dueAt });
    },
    async signOffItem(instance, item, note) {
      host.calls.push(`signOffItem:${instance}:${item}:${note}`);
      return update(instance, item, { state: 'done', state_text: 'signed off just now by alice', signed_off_by: 'alice', signed_off_at: now });
    },
    async addItemEvidence(instance, item, evidence) {
      host.calls.push(`addItemEvidence:${instance}:${item}:${evidence.kind}:${evidence.text}`);
      if (evidence.kind === 'link' && !/^https?:\/\//.test(evidence.text)) {
        throw new HostError('invalid_input', 'Invalid evidence: a link must start with https:// or http://');
      }
      const current = host.items.find((i) => i.instance === instance && i.id === item)!;
      return update(instance, item, {
        evidence: [{ id: current.evidence.length + 1, at: now, actor: 'alice', kind: evidence.kind, text: evidence.text, sha256: null, size: null }, ...current.evidence],
      });
    },
    async waiveItem(instance, item, waiver) {
      host.calls.push(`waiveItem:${instance}:${item}:${waiver.kind}`);
      if (!waiver.reason.trim()) throw new HostError('invalid_input', 'Invalid waiver: say why the item is waived');
      return update(instance, item, {
        state: 'waived',
        state_text: `waived until later (${waiver.reason}; approved by ${waiver.approved_by})`,
        waiver: { id: 1, kind: waiver.kind, reason: waiver.reason, approved_by: waiver.approved_by, created_at: now, expires_at: waiver.expires_at },
      });
    },
    async endWaiver(instance, item) {
      host.calls.push(`endWaiver:${instance}:${item}`);
      return update(instance, item, { state: 'fail', waiver: null, state_text: 'fails again' });
    },
    async exportCompliance(format) {
      host.calls.push(`exportCompliance:${format}`);
      return `/home/op/Downloads/gatehouse-compliance.${format}`;
    },
    async setTlsMinimum(version) {
      host.calls.push(`setTlsMinimum:${version}`);
      return complianceOf(host.items, null, null, now);
    },
  };
}
