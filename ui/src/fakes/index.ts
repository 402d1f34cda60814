// A scriptable stand-in for the Tauri host, for UI tests: one fake per domain, composed here.
// Each answers like the real core and records what the UI asked for in `calls`; sample data is
// built around the `now` a test passes in (Unix seconds; the pinned clock's now by default).
import { hostContext } from '../lib/context';
import { nowSeconds } from '../lib/clock';
import type { Host } from '../lib/host';
import { complianceFake, type ComplianceFake } from './compliance';
import { fleetFake, type FleetFake } from './fleet';
import { heatmapsFake, type HeatmapsFake } from './heatmaps';
import { incidentsFake, type IncidentsFake } from './incidents';
import { rotationFake, type RotationFake } from './rotation';
import { settingsFake, type SettingsFake } from './settings';
import { shellFake, type ShellFake } from './shell';
import { timelineFake, type TimelineFake } from './timeline';

export { complianceOf, sampleItem } from './compliance';
export { sampleInstance } from './fleet';
export { sampleAlert, sampleHeatmap, sampleOffender } from './heatmaps';
export { HOSTILE, HOSTILE_SHOWN, holdsHidden } from './hostile';
export { SAMPLE_PLAYBOOK } from './incidents';
export { sampleCredential } from './rotation';
export { sampleEvent } from './timeline';

export interface FakeHost
  extends Host,
    ShellFake,
    SettingsFake,
    FleetFake,
    TimelineFake,
    HeatmapsFake,
    RotationFake,
    ComplianceFake,
    IncidentsFake {
  calls: string[];
}

export interface FakeOptions {
  /** The instant sample data is built around, in Unix seconds. */
  now?: number;
}

export function fakeHost({ now = Math.floor(nowSeconds()) }: FakeOptions = {}): FakeHost {
  const host = { calls: [] as string[] } as FakeHost;
  const parts = {
    ...shellFake(host),
    ...settingsFake(host),
    ...fleetFake(host, now),
    ...timelineFake(host),
    ...heatmapsFake(host),
    ...rotationFake(host, now),
    ...complianceFake(host, now),
    ...incidentsFake(host, now),
  };
  // Every command of the Host interface has a fake: a missing one fails to compile here.
  const complete: Host = parts;
  return Object.assign(host, complete);
}

/** Render options that give a view (or a domain component) the host through context, the way
 * App does: `render(Timeline, withHost(host, { ongo }))`. */
export function withHost<const Props extends Record<string, unknown>>(host: Host, props: Props = {} as Props) {
  return { props, context: hostContext(host) };
}
