// What the shell asks for: the overview on the first screen, and the first-paint report.
import type { Overview } from '../gen/Overview';
import type { Host, HostError } from '../lib/host';
import type { FakeHost } from './index';

export interface ShellFake {
  overviewError: HostError | null;
  overviewOverride: Partial<Overview> | null;
}

type ShellCalls = Pick<Host, 'overview' | 'firstPaint'>;

export function shellFake(host: FakeHost): ShellFake & ShellCalls {
  return {
    overviewError: null,
    overviewOverride: null,
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
    async firstPaint() {
      host.calls.push('firstPaint');
    },
  };
}
