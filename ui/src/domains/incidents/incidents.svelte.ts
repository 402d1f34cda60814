// The Incidents view's controller: the incidents, the one shown with its playbook and log, and
// the playbook's actions (each confirmed first where it changes a host, its verified result
// logged).
import type { ActionKind } from '../../gen/ActionKind';
import type { Incident } from '../../gen/Incident';
import type { IncidentStatus } from '../../gen/IncidentStatus';
import type { IncidentView } from '../../gen/IncidentView';
import type { InstanceView } from '../../gen/InstanceView';
import type { Severity } from '../../gen/Severity';
import type { TimelineEvent } from '../../gen/TimelineEvent';
import type { View } from '../../gen/View';
import { addressProblem } from '../../lib/address';
import { nowMicros, nowSeconds } from '../../lib/clock';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';
import type { TimelinePreset } from '../../lib/preset';

export interface IncidentsOptions {
  /** Show events in the timeline. */
  onopen: (preset: TimelinePreset) => void;
  /** Go to another view (a key is rotated in Rotation). */
  ongo: (view: View) => void;
}

/** An action waiting for the operator's confirmation, which names its target and impact. */
export interface Confirmation {
  title: string;
  body: string;
  run: () => Promise<void>;
}

export class IncidentsController {
  readonly #host: Host;
  readonly #options: IncidentsOptions;

  list = $state<Incident[] | null>(null);
  instances = $state<InstanceView[]>([]);
  view = $state<IncidentView | null>(null);
  error = $state<HostError | null>(null);
  note = $state<string | null>(null);
  /** The action under way, in words. */
  busy = $state<string | null>(null);
  writes = $state<TimelineEvent[] | null>(null);
  now = $state(nowSeconds());
  confirm = $state<Confirmation | null>(null);
  /** The block or unblock dialog, while open: the address is checked there as typed. */
  blocking = $state<'block' | 'unblock' | null>(null);
  /** The playbook step being read, when it is not the incident's own: reading is not moving on. */
  viewedStep = $state<string | null>(null);
  /** The owner as typed, saved with its own button. */
  ownerText = $state('');

  // The new incident form.
  creating = $state(false);
  newTitle = $state('');
  newInstance = $state('');
  newIps = $state('');
  newHours = $state(24);
  newSeverity = $state<Severity>('medium');

  // The shown incident's note and action target.
  noteText = $state('');
  blockIp = $state('');
  blockInstance = $state('');
  blockTtl = $state(3600);
  /** Why the core asked for a second confirmation of this block (the address may be forged). */
  spoofable = $state<string | null>(null);
  snapshotNames = $state<string[] | null>(null);
  restoreName = $state('');

  readonly openCount = $derived((this.list ?? []).filter((i) => i.status === 'open').length);
  /** The step shown: the one being read, else the incident's current step. */
  readonly shownStep = $derived(this.viewedStep ?? this.view?.incident.step ?? null);
  /** What is wrong with the action target's address, in words; null when it is an address. */
  readonly addressProblem = $derived(addressProblem(this.blockIp));

  constructor(host: Host, options: IncidentsOptions) {
    this.#host = host;
    this.#options = options;
  }

  start(): () => void {
    void this.load();
    this.#host
      .instances()
      .then((i) => {
        this.instances = i;
        this.newInstance = i[0]?.name ?? '';
      })
      .catch((e) => (this.error = toHostError(e)));
    return () => {};
  }

  async load(): Promise<void> {
    this.now = nowSeconds();
    try {
      this.list = await this.#host.incidents();
      if (this.view) this.view = await this.#host.incident(this.view.incident.id);
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Show an incident opened elsewhere (from an alert, an offender, a heatmap cell). */
  async focus(id: number): Promise<void> {
    await this.load();
    await this.open(id);
  }

  async open(id: number): Promise<void> {
    this.writes = null;
    this.note = null;
    this.#forgetSnapshots();
    try {
      const view = await this.#host.incident(id);
      this.view = view;
      this.viewedStep = null;
      this.ownerText = view.incident.owner ?? '';
      this.blockInstance = view.incident.instances[0] ?? '';
      this.blockIp = view.incident.ips[0] ?? '';
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Another instance's snapshots are not this one's. */
  targetChanged(): void {
    this.#forgetSnapshots();
  }

  setStatus(status: IncidentStatus): Promise<void> {
    const id = this.view?.incident.id;
    if (id === undefined) return Promise.resolve();
    return this.#act(status, () => this.#host.updateIncident(id, status, null, null));
  }

  /** Read a step: it is shown, nothing is recorded. Choosing the current step shows it again. */
  viewStep(step: string): void {
    this.viewedStep = step === this.view?.incident.step ? null : step;
  }

  /** Move the incident on to a step: a decision, recorded in its log. */
  async goToStep(step: string): Promise<void> {
    const id = this.view?.incident.id;
    if (id === undefined) return;
    await this.#act('step', () => this.#host.updateIncident(id, null, null, step));
    if (this.view?.incident.step === step) this.viewedStep = null;
  }

  /** Save the owner as typed; empty leaves the incident without one. */
  saveOwner(): Promise<void> {
    const id = this.view?.incident.id;
    if (id === undefined) return Promise.resolve();
    return this.#act('owner', () => this.#host.updateIncident(id, null, this.ownerText.trim(), null));
  }

  /** Block or unblock the target address, once confirmed in the dialog (which checks it). */
  confirmBlock(): void {
    const kind = this.blocking;
    const id = this.view?.incident.id;
    const ip = this.blockIp.trim();
    const instance = this.blockInstance;
    if (!kind || id === undefined || this.addressProblem || !instance) return;
    this.blocking = null;
    const ttlSecs = this.blockTtl;
    const confirmedTwice = this.spoofable !== null;
    this.spoofable = null;
    void this.#act(kind === 'block' ? 'block_ip' : 'unblock_ip', async () => {
      if (kind === 'unblock') return this.#host.incidentUnblock(id, instance, ip);
      try {
        return await this.#host.incidentBlock(id, instance, ip, ttlSecs, confirmedTwice);
      } catch (e) {
        const error = toHostError(e);
        if (error.code !== 'spoofable_address') throw e;
        // The address may be forged: the dialog opens again, saying so, for a second yes.
        this.blockIp = ip;
        this.blockInstance = instance;
        this.spoofable = error.message;
        this.blocking = 'block';
      }
    });
  }

  addNote(decision: boolean): Promise<void> {
    const id = this.view?.incident.id;
    if (id === undefined) return Promise.resolve();
    return this.#act(decision ? 'decision' : 'note', async () => {
      const result = await this.#host.incidentNote(id, decision, this.noteText);
      this.noteText = '';
      return result;
    });
  }

  confirmed(): void {
    const c = this.confirm;
    this.confirm = null;
    void c?.run();
  }

  cancel(): void {
    this.confirm = null;
  }

  /** A playbook step's action: at once, or after a choice or a confirmation. */
  action(kind: ActionKind): void {
    if (!this.view) return;
    const v = this.view;
    const id = v.incident.id;
    const target = this.blockInstance || v.incident.instances[0] || '';
    switch (kind) {
      case 'show_events':
        this.#options.onopen({ label: `Incident ${id}: ${v.incident.title}`, filter: v.events });
        return;
      case 'show_writes':
        void this.#act('writes', async () => {
          this.writes = await this.#host.incidentWrites(id);
        });
        return;
      case 'block_ip':
      case 'unblock_ip':
        this.note = null;
        this.blocking = kind === 'block_ip' ? 'block' : 'unblock';
        return;
      case 'restart_service':
        this.confirm = {
          title: `Restart the service on ${target}?`,
          body: `Its clients get errors until it answers again; Gatehouse waits for its health check and says whether it came back.${this.#losesData()}`,
          run: () => this.#act('restart', () => this.#host.incidentRestart(id, target)),
        };
        return;
      case 'snapshot_database':
        this.#forgetSnapshots();
        void this.#act('snapshot', () => this.#host.incidentSnapshot(id, target));
        return;
      case 'restore_database': {
        // The first press lists the snapshots to choose from; the second restores the chosen one.
        if (this.snapshotNames === null || !this.restoreName) {
          void this.#act('snapshots', async () => {
            const names = await this.#host.snapshots(target);
            this.snapshotNames = names;
            this.restoreName = names[0] ?? '';
            this.note = names.length
              ? 'Choose the snapshot to restore, then press Restore again.'
              : `No snapshot on ${target} yet: take one with "Snapshot the database".`;
          });
          return;
        }
        const name = this.restoreName;
        this.confirm = {
          title: `Restore ${name} on ${target}?`,
          body: `The database on ${target} is replaced by this snapshot and the service restarts; whatever changed since is undone. A safety snapshot of the database as it is now is taken first, so this restore can itself be undone.${this.#losesData()}`,
          run: () => this.#act('restore', () => this.#host.incidentRestore(id, target, name)),
        };
        return;
      }
      case 'rotate_key':
        this.#options.ongo('rotation');
        return;
      case 'evidence_bundle':
        void this.#act('evidence', async () => {
          const b = await this.#host.evidenceBundle(id);
          this.note = `Evidence saved: ${b.files} files in ${b.path}, with MANIFEST.sha256.`;
          return this.#host.incident(id);
        });
        return;
      case 'report':
        void this.#act('report', async () => {
          const md = await this.#host.exportIncidentReport(id, true);
          const html = await this.#host.exportIncidentReport(id, false);
          this.note = `Report saved: ${md} and ${html}`;
        });
        return;
    }
  }

  /** Lead to a new incident (the form), for the command palette. */
  startNew(): void {
    this.creating = true;
    this.note = null;
  }

  /**
   * Lead to blocking an address, for the command palette: blocks belong to an incident, so the
   * latest open (or contained) one is shown at its step that blocks, with the block dialog (which
   * checks the address and asks). With none, the new incident form, and why.
   */
  async prepareBlock(): Promise<void> {
    await this.load();
    const active = (this.list ?? []).find((i) => i.status === 'open' || i.status === 'contained');
    if (!active) {
      this.startNew();
      this.note = 'Blocking is done within an incident: open one about the address, then its containment step blocks it.';
      return;
    }
    await this.open(active.id);
    const step = this.view?.playbook?.steps.find((s) => s.actions.includes('block_ip'));
    if (step) this.viewStep(step.id);
    this.blocking = 'block';
  }

  async create(): Promise<void> {
    const nowUs = nowMicros();
    await this.#act('create', async () => {
      const created = await this.#host.openIncident({
        origin: 'hand',
        title: this.newTitle,
        severity: this.newSeverity,
        instances: this.newInstance ? [this.newInstance] : [],
        ips: this.newIps.split(/[\s,]+/).filter(Boolean),
        from_us: nowUs - this.newHours * 3_600_000_000,
        to_us: nowUs,
      });
      this.creating = false;
      this.newTitle = '';
      this.newIps = '';
      return created;
    });
  }

  #forgetSnapshots(): void {
    this.snapshotNames = null;
    this.restoreName = '';
  }

  /** What a restart of this incident's service destroys, as its profile says, to append to a
   * confirmation ("" when nothing). */
  #losesData(): string {
    const loses = this.view?.restart_loses_data;
    return loses ? ` ${loses}` : '';
  }

  /** Run an action; the incident's log shows its verified result, or the notice says why. */
  async #act(label: string, run: () => Promise<IncidentView | void>): Promise<void> {
    this.busy = label;
    this.error = null;
    try {
      const result = await run();
      if (result) this.view = result;
      await this.load();
    } catch (e) {
      this.error = toHostError(e);
      const shown = this.view;
      if (shown) this.view = await this.#host.incident(shown.incident.id).catch(() => shown);
    } finally {
      this.busy = null;
    }
  }
}

const context = controllerContext('incidents', (host, options: IncidentsOptions) => new IncidentsController(host, options));

/** For the Incidents view: its controller, started and stopped with it. */
export const provideIncidents = context.provide;
/** For the Incidents view's parts. */
export const useIncidents = context.use;
