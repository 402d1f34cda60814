// A scriptable stand-in for the Tauri host, for UI tests. It answers like the real core and
// records what the UI asked for.
import type { KeychainStatus } from '../gen/KeychainStatus';
import type { Overview } from '../gen/Overview';
import type { Theme } from '../gen/Theme';
import { HostError, type Host } from './host';

export interface FakeHost extends Host {
  calls: string[];
  theme: Theme;
  keychain: KeychainStatus;
  overviewError: HostError | null;
  overviewOverride: Partial<Overview> | null;
}

export function fakeHost(): FakeHost {
  const host: FakeHost = {
    calls: [],
    theme: 'system',
    keychain: { state: 'available', service: 'Gatehouse', backend: 'Secret Service (D-Bus)', message: '' },
    overviewError: null,
    overviewOverride: null,
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
    async overview() {
      host.calls.push('overview');
      if (host.overviewError) throw host.overviewError;
      return {
        instances: 0,
        keychain: host.keychain,
        attention: [
          {
            view: 'fleet',
            status: 'unknown',
            title: 'No instances enrolled yet',
            detail: 'Enroll an instance from the Fleet view, or start the demo fleet.',
          },
        ],
        ...host.overviewOverride,
      };
    },
    async settings() {
      host.calls.push('settings');
      return { theme: host.theme };
    },
    async setTheme(theme) {
      host.calls.push(`setTheme:${theme}`);
      host.theme = theme;
      return { theme };
    },
    async firstPaint() {
      host.calls.push('firstPaint');
    },
  };
  return host;
}
