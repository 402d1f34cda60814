// What a click on a cell, an offender or an alert shows in the timeline: exactly its events.
import type { Alert } from '../../gen/Alert';
import type { HeatCell } from '../../gen/HeatCell';
import type { Offender } from '../../gen/Offender';
import { addressPreset, type TimelinePreset } from '../../lib/preset';

export function cellPreset(cell: HeatCell, zone: string): TimelinePreset {
  return { label: `Failed sign-ins, ${cell.label} (heatmap cell, ${zone})`, filter: cell.filter };
}

export function offenderPreset(o: Offender): TimelinePreset {
  return addressPreset(o.ip, o.first_us, o.last_us + 1, `Everything from ${o.ip} between its first and last failure`);
}

export function alertPreset(a: Alert): TimelinePreset {
  const preset = addressPreset(a.subject ?? '', a.first_us, a.last_us + 1, `Events of alert #${a.id}: ${a.rule_name} on ${a.instance}`);
  preset.filter.ip = a.subject;
  preset.filter.instance = a.instance;
  return preset;
}
