// How the console is set up: theme, time zone, keychain, app info, detection rules, audit log.
import type { AuditEntry } from '../gen/AuditEntry';
import type { AuditVerdict } from '../gen/AuditVerdict';
import type { DetectionSettings } from '../gen/DetectionSettings';
import type { KeychainStatus } from '../gen/KeychainStatus';
import type { PolicyOverview } from '../gen/PolicyOverview';
import type { Theme } from '../gen/Theme';
import { HostError, type Host } from '../lib/host';
import type { FakeHost } from './index';

export interface SettingsFake {
  theme: Theme;
  timeZone: string | null;
  keychain: KeychainStatus;
  detectionSettings: DetectionSettings;
  policy: PolicyOverview;
  audit: AuditEntry[];
  auditVerdict: AuditVerdict;
}

type SettingsCalls = Pick<
  Host,
  | 'appInfo'
  | 'keychainStatus'
  | 'settings'
  | 'setTheme'
  | 'setTimeZone'
  | 'detection'
  | 'setDetection'
  | 'resetDetection'
  | 'policyOverview'
  | 'replayRules'
  | 'auditLog'
  | 'verifyAudit'
  | 'rotateAuditKey'
>;

/** What the core accepts in an allowlist, roughly: addresses and networks. */
const ADDRESS = /^[0-9a-f.:/]+$/i;

export function settingsFake(host: FakeHost): SettingsFake & SettingsCalls {
  return {
    theme: 'system',
    timeZone: null,
    keychain: { state: 'available', service: 'Gatehouse', backend: 'Secret Service (D-Bus)', message: '' },
    detectionSettings: {
      rules: [
        {
          id: 'brute-force',
          name: 'Brute force',
          detection: { kind: 'brute_force', failures: 5, window_secs: 600 },
          services: [],
          enabled: true,
          severity: 'high',
          basis: 'Sekha security guide, Fail2Ban jail: maxretry = 5, findtime = 600.',
          response: { kind: 'block', ttl_secs: 3600 },
        },
      ],
      allowlist: [],
    },
    policy: { version: 1, agents: [] },
    audit: [],
    auditVerdict: { intact: true, rows: 0, first_broken: null, problem: null, unverifiable: 0, key_generation: 1 },
    async appInfo() {
      host.calls.push('appInfo');
      return {
        version: '0.1.0',
        data_dir: '/tmp/gatehouse-test',
        database: '/tmp/gatehouse-test/gatehouse.sqlite3',
        log_dir: '/tmp/gatehouse-test/logs',
        schema_version: 1,
        platform: 'linux-x86_64',
      };
    },
    async keychainStatus() {
      host.calls.push('keychainStatus');
      return host.keychain;
    },
    async settings() {
      host.calls.push('settings');
      return { theme: host.theme, time_zone: host.timeZone, effective_time_zone: host.timeZone ?? 'Europe/Berlin' };
    },
    async setTheme(theme) {
      host.calls.push(`setTheme:${theme}`);
      host.theme = theme;
      return host.settings();
    },
    async setTimeZone(zone) {
      host.calls.push(`setTimeZone:${zone}`);
      if (zone === 'Mars/Olympus') throw new HostError('invalid_input', 'Invalid time_zone: "Mars/Olympus" is not a known time zone');
      host.timeZone = zone;
      return host.settings();
    },
    async detection() {
      host.calls.push('detection');
      return host.detectionSettings;
    },
    async setDetection(detection) {
      host.calls.push('setDetection');
      const bad = detection.allowlist.find((a) => !ADDRESS.test(a));
      if (bad !== undefined) {
        throw new HostError('invalid_input', `Invalid allowlist: "${bad}" is not an address or a network such as 192.0.2.0/24`);
      }
      host.detectionSettings = detection;
      host.policy = { ...host.policy, version: host.policy.version + 1 };
      return detection;
    },
    async resetDetection() {
      host.calls.push('resetDetection');
      return host.detectionSettings;
    },
    async replayRules(request) {
      host.calls.push(`replayRules:${request.rules.length}:${request.allowlist.join(',')}`);
      return {
        from_us: 0,
        to_us: 0,
        failures: 120,
        capped: false,
        rules: request.rules.map((r) => ({
          rule_id: r.id,
          rule_name: r.name,
          firings: 3,
          addresses: 2,
          blocks: r.response.kind === 'block' ? 3 : 0,
          examples: [{ instance: 'alpha', ip: '203.0.113.7', first_us: 0, count: 9 }],
        })),
        allowlist: request.allowlist.map((entry) => ({ entry, failures: 14, firings_suppressed: 1 })),
      };
    },
    async policyOverview() {
      host.calls.push('policyOverview');
      return host.policy;
    },
    async auditLog(limit) {
      host.calls.push(`auditLog:${limit}`);
      return host.audit;
    },
    async verifyAudit() {
      host.calls.push('verifyAudit');
      return host.auditVerdict;
    },
    async rotateAuditKey() {
      host.calls.push('rotateAuditKey');
      host.auditVerdict = { ...host.auditVerdict, key_generation: host.auditVerdict.key_generation + 1 };
      return host.auditVerdict.key_generation;
    },
  };
}
