// The one module that talks to the Tauri host. Everything else receives a `Host`, so the UI
// runs against `fakeHost` in tests and nothing but this file imports @tauri-apps/*.
import { invoke } from '@tauri-apps/api/core';

import type { AddInstance } from '../gen/AddInstance';
import type { Alert } from '../gen/Alert';
import type { AlertFilter } from '../gen/AlertFilter';
import type { AlertState } from '../gen/AlertState';
import type { CredentialInventory } from '../gen/CredentialInventory';
import type { DetectionSettings } from '../gen/DetectionSettings';
import type { Heatmap } from '../gen/Heatmap';
import type { HeatmapQuery } from '../gen/HeatmapQuery';
import type { ImageFormat } from '../gen/ImageFormat';
import type { Offender } from '../gen/Offender';
import type { OffenderQuery } from '../gen/OffenderQuery';
import type { RotationPreview } from '../gen/RotationPreview';
import type { RotationRecord } from '../gen/RotationRecord';
import type { RotationResult } from '../gen/RotationResult';
import type { AppInfo } from '../gen/AppInfo';
import type { BulkItem } from '../gen/BulkItem';
import type { Cursor } from '../gen/Cursor';
import type { ErrorCode } from '../gen/ErrorCode';
import type { EventFilter } from '../gen/EventFilter';
import type { EventPage } from '../gen/EventPage';
import type { ExportFormat } from '../gen/ExportFormat';
import type { ExportResult } from '../gen/ExportResult';
import type { InstanceView } from '../gen/InstanceView';
import type { KeychainStatus } from '../gen/KeychainStatus';
import type { Overview } from '../gen/Overview';
import type { RefreshSummary } from '../gen/RefreshSummary';
import type { Settings } from '../gen/Settings';
import type { SyncState } from '../gen/SyncState';
import type { Theme } from '../gen/Theme';
import type { CheckRun } from '../gen/CheckRun';
import type { AuditEntry } from '../gen/AuditEntry';
import type { AuditVerdict } from '../gen/AuditVerdict';
import type { BundleResult } from '../gen/BundleResult';
import type { Incident } from '../gen/Incident';
import type { IncidentStatus } from '../gen/IncidentStatus';
import type { IncidentView } from '../gen/IncidentView';
import type { OpenIncident } from '../gen/OpenIncident';
import type { TimelineEvent } from '../gen/TimelineEvent';
import type { ComplianceQuery } from '../gen/ComplianceQuery';
import type { ComplianceView } from '../gen/ComplianceView';
import type { EvidenceInput } from '../gen/EvidenceInput';
import type { HistoryEntry } from '../gen/HistoryEntry';
import type { ItemView } from '../gen/ItemView';
import type { ReportFormat } from '../gen/ReportFormat';
import type { WaiverInput } from '../gen/WaiverInput';

/** Codes the UI branches on: the core's, plus `ipc_failed` when the call itself failed. */
export type HostErrorCode = ErrorCode | 'ipc_failed';

/** A failed host call: the core's `{code, message}`, or an IPC failure. */
export class HostError extends Error {
  readonly code: HostErrorCode;

  constructor(code: HostErrorCode, message: string) {
    super(message);
    this.name = 'HostError';
    this.code = code;
  }
}

export interface Host {
  appInfo(): Promise<AppInfo>;
  keychainStatus(): Promise<KeychainStatus>;
  overview(): Promise<Overview>;
  settings(): Promise<Settings>;
  setTheme(theme: Theme): Promise<Settings>;
  /** Tell the host the first frame is on screen (startup measurement). */
  firstPaint(): Promise<void>;
  instances(): Promise<InstanceView[]>;
  addInstance(request: AddInstance): Promise<InstanceView>;
  refreshInstance(name: string): Promise<InstanceView>;
  refreshAll(): Promise<RefreshSummary>;
  revokeInstance(name: string): Promise<InstanceView>;
  removeInstance(name: string): Promise<void>;
  events(filter: EventFilter, before: Cursor | null, limit: number): Promise<EventPage>;
  eventRaw(instance: string, seq: number): Promise<string | null>;
  syncStates(): Promise<SyncState[]>;
  syncNow(): Promise<number>;
  exportEvents(filter: EventFilter, format: ExportFormat): Promise<ExportResult>;
  /** Set the charts' time zone (IANA name), or follow the system's with null. */
  setTimeZone(zone: string | null): Promise<Settings>;
  heatmap(query: HeatmapQuery): Promise<Heatmap>;
  /** Save the chart to the Downloads folder; resolves with its path. */
  exportHeatmap(query: HeatmapQuery, format: ImageFormat): Promise<string>;
  offenders(query: OffenderQuery): Promise<Offender[]>;
  alerts(filter: AlertFilter): Promise<Alert[]>;
  setAlertState(id: number, state: AlertState): Promise<Alert>;
  detection(): Promise<DetectionSettings>;
  setDetection(detection: DetectionSettings): Promise<DetectionSettings>;
  resetDetection(): Promise<DetectionSettings>;
  /** Resolves when the operator clicks an alert's desktop notification. */
  nextOpenedAlert(): Promise<number>;
  /** Every credential known; asks the agents now. */
  credentials(): Promise<CredentialInventory>;
  /** Days between API key rotations on an instance; null for the guides' 90. */
  setKeyRotationDays(instance: string, days: number | null): Promise<void>;
  rotationPreview(instance: string, name: string): Promise<RotationPreview>;
  /** Rotate a key on the host; the new key never comes to the window. */
  rotateKey(instance: string, name: string): Promise<RotationResult>;
  /** Put a rotated key (by label, or the latest) on the clipboard once, cleared after 30 s. */
  copyRotatedKey(label?: string): Promise<string>;
  /** Rotate several keys, four at a time. */
  rotateMany(targets: [string, string][]): Promise<BulkItem[]>;
  /** [done, total] of the bulk rotation under way. */
  bulkProgress(): Promise<[number, number]>;
  /** Rotations run from this console, newest first. */
  rotationHistory(limit: number): Promise<RotationRecord[]>;
  /** Every instance's checklist as it stands. */
  compliance(query: ComplianceQuery): Promise<ComplianceView>;
  /** Run the automated checks now (one instance, or all with null). */
  runChecks(instance: string | null): Promise<CheckRun>;
  itemHistory(instance: string, item: string): Promise<HistoryEntry[]>;
  assignItem(instance: string, item: string, owner: string | null, dueAt: number | null): Promise<ItemView>;
  signOffItem(instance: string, item: string, note: string): Promise<ItemView>;
  addItemEvidence(instance: string, item: string, evidence: EvidenceInput): Promise<ItemView>;
  waiveItem(instance: string, item: string, waiver: WaiverInput): Promise<ItemView>;
  endWaiver(instance: string, item: string): Promise<ItemView>;
  /** Save the report to the Downloads folder; resolves with its path. */
  exportCompliance(format: ReportFormat): Promise<string>;
  setTlsMinimum(version: string): Promise<ComplianceView>;
  incidents(): Promise<Incident[]>;
  incident(id: number): Promise<IncidentView>;
  openIncident(input: OpenIncident): Promise<IncidentView>;
  incidentFromAlert(alert: number): Promise<IncidentView>;
  incidentNote(id: number, decision: boolean, text: string): Promise<IncidentView>;
  updateIncident(id: number, status: IncidentStatus | null, owner: string | null, step: string | null): Promise<IncidentView>;
  /** Block an address on an instance's host, verified there. */
  incidentBlock(id: number, instance: string, ip: string, ttlSecs: number): Promise<IncidentView>;
  incidentUnblock(id: number, instance: string, ip: string): Promise<IncidentView>;
  incidentRestart(id: number, instance: string): Promise<IncidentView>;
  incidentWrites(id: number): Promise<TimelineEvent[]>;
  /** Collect the evidence bundle into the Downloads folder. */
  evidenceBundle(id: number): Promise<BundleResult>;
  /** Save the post-incident report to the Downloads folder; resolves with its path. */
  exportIncidentReport(id: number, markdown: boolean): Promise<string>;
  /** Snapshot an instance's database from an incident. */
  incidentSnapshot(id: number, instance: string): Promise<IncidentView>;
  /** Restore a snapshot (a safety snapshot is taken first). */
  incidentRestore(id: number, instance: string, name: string): Promise<IncidentView>;
  /** Snapshot names on an instance's host, newest first. */
  snapshots(instance: string): Promise<string[]>;
  auditLog(limit: number): Promise<AuditEntry[]>;
  verifyAudit(): Promise<AuditVerdict>;
}

/** Turn whatever a rejected call carried into a HostError. */
export function toHostError(raw: unknown): HostError {
  if (raw instanceof HostError) return raw;
  if (typeof raw === 'object' && raw !== null && 'code' in raw && 'message' in raw) {
    const { code, message } = raw as { code: unknown; message: unknown };
    if (typeof code === 'string' && typeof message === 'string') {
      return new HostError(code as ErrorCode, message);
    }
  }
  const text = raw instanceof Error ? raw.message : String(raw);
  return new HostError('ipc_failed', `The console's backend did not answer: ${text}`);
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    throw toHostError(raw);
  }
}

export const tauriHost: Host = {
  appInfo: () => call('app_info'),
  keychainStatus: () => call('keychain_status'),
  overview: () => call('overview'),
  settings: () => call('settings'),
  setTheme: (theme) => call('set_theme', { theme }),
  firstPaint: () => call('first_paint'),
  instances: () => call('instances'),
  addInstance: (request) => call('add_instance', { request }),
  refreshInstance: (name) => call('refresh_instance', { name }),
  refreshAll: () => call('refresh_all'),
  revokeInstance: (name) => call('revoke_instance', { name }),
  removeInstance: (name) => call('remove_instance', { name }),
  events: (filter, before, limit) => call('events', { filter, before, limit }),
  eventRaw: (instance, seq) => call('event_raw', { instance, seq }),
  syncStates: () => call('sync_states'),
  syncNow: () => call('sync_now'),
  exportEvents: (filter, format) => call('export_events', { filter, format }),
  setTimeZone: (zone) => call('set_time_zone', { zone }),
  heatmap: (query) => call('heatmap', { query }),
  exportHeatmap: (query, format) => call('export_heatmap', { query, format }),
  offenders: (query) => call('offenders', { query }),
  alerts: (filter) => call('alerts', { filter }),
  setAlertState: (id, state) => call('set_alert_state', { id, alertState: state }),
  detection: () => call('detection'),
  setDetection: (detection) => call('set_detection', { detection }),
  resetDetection: () => call('reset_detection'),
  nextOpenedAlert: () => call('next_opened_alert'),
  credentials: () => call('credentials'),
  setKeyRotationDays: (instance, days) => call('set_key_rotation_days', { instance, days }),
  rotationPreview: (instance, name) => call('rotation_preview', { instance, name }),
  rotateKey: (instance, name) => call('rotate_key', { instance, name }),
  copyRotatedKey: (label) => call('copy_rotated_key', { label: label ?? null }),
  rotateMany: (targets) => call('rotate_many', { targets }),
  bulkProgress: () => call('bulk_progress'),
  rotationHistory: (limit) => call('rotation_history', { limit }),
  compliance: (query) => call('compliance', { query }),
  runChecks: (instance) => call('run_checks', { instance }),
  itemHistory: (instance, item) => call('item_history', { instance, item }),
  assignItem: (instance, item, owner, dueAt) => call('assign_item', { instance, item, owner, dueAt }),
  signOffItem: (instance, item, note) => call('sign_off_item', { instance, item, note }),
  addItemEvidence: (instance, item, evidence) => call('add_item_evidence', { instance, item, evidence }),
  waiveItem: (instance, item, waiver) => call('waive_item', { instance, item, waiver }),
  endWaiver: (instance, item) => call('end_waiver', { instance, item }),
  exportCompliance: (format) => call('export_compliance', { format }),
  setTlsMinimum: (version) => call('set_tls_minimum', { version }),
  incidents: () => call('incidents'),
  incident: (id) => call('incident', { id }),
  openIncident: (input) => call('open_incident', { input }),
  incidentFromAlert: (alert) => call('incident_from_alert', { alert }),
  incidentNote: (id, decision, text) => call('incident_note', { id, decision, text }),
  updateIncident: (id, status, owner, step) => call('update_incident', { id, status, owner, step }),
  incidentBlock: (id, instance, ip, ttlSecs) => call('incident_block', { id, instance, ip, ttlSecs }),
  incidentUnblock: (id, instance, ip) => call('incident_unblock', { id, instance, ip }),
  incidentRestart: (id, instance) => call('incident_restart', { id, instance }),
  incidentWrites: (id) => call('incident_writes', { id }),
  evidenceBundle: (id) => call('evidence_bundle', { id }),
  exportIncidentReport: (id, markdown) => call('export_incident_report', { id, markdown }),
  incidentSnapshot: (id, instance) => call('incident_snapshot', { id, instance }),
  incidentRestore: (id, instance, name) => call('incident_restore', { id, instance, name }),
  snapshots: (instance) => call('snapshots', { instance }),
  auditLog: (limit) => call('audit_log', { limit }),
  verifyAudit: () => call('verify_audit'),
};
