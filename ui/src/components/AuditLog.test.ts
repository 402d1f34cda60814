import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import { fakeHost } from '../fakes';
import AuditLog from './AuditLog.svelte';

afterEach(cleanup);

describe('audit log', () => {
  it('lists actions and reports the first broken link in words', async () => {
    const host = fakeHost();
    host.audit = [{ id: 2, at_us: 1_795_401_600_000_000, actor: 'alice', action: 'console', target: 'sekha-prod', detail: 'Blocked 203.0.113.7 for 3600 s', mac: 'ab'.repeat(32) }];
    host.auditVerdict = { intact: false, rows: 2, first_broken: 2, problem: 'row 2 does not match its MAC: it was edited, or written without the key' };
    render(AuditLog, { host });
    expect(await screen.findByText('Blocked 203.0.113.7 for 3600 s'), 'each action is listed').toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Verify the chain' }));
    const verdict = await screen.findByTestId('audit-verdict');
    await waitFor(() => expect(verdict.textContent, 'the broken row and why').toMatch(/Broken.*row 2.*edited/s));
  });
});
