import { describe, expect, it } from 'vitest';

import { filterCommands } from './commands';
import { HostError, toHostError } from './host';
import { neighbour, viewForShortcut, VIEWS } from './views';

const key = (k: string, mods: Partial<Record<'ctrlKey' | 'metaKey' | 'altKey', boolean>> = {}) => ({
  key: k,
  ctrlKey: false,
  metaKey: false,
  altKey: false,
  ...mods,
});

describe('view shortcuts', () => {
  it('maps Ctrl and Cmd plus a digit to each view in order', () => {
    VIEWS.forEach((view, i) => {
      expect(viewForShortcut(key(String(i + 1), { ctrlKey: true })), `Ctrl+${i + 1}`).toBe(view.id);
      expect(viewForShortcut(key(String(i + 1), { metaKey: true })), `Cmd+${i + 1}`).toBe(view.id);
    });
  });

  it('ignores bare digits and Alt combinations, which belong to text fields and the OS', () => {
    expect(viewForShortcut(key('1')), 'a bare digit is typing').toBeNull();
    expect(viewForShortcut(key('1', { ctrlKey: true, altKey: true })), 'Ctrl+Alt belongs to the OS').toBeNull();
    expect(viewForShortcut(key('9', { ctrlKey: true })), 'there is no ninth view').toBeNull();
  });

  it('wraps around when moving past either end of the list', () => {
    expect(neighbour('settings', 1), 'down from the last view wraps to the first').toBe('fleet');
    expect(neighbour('fleet', -1), 'up from the first wraps to the last').toBe('settings');
    expect(neighbour('fleet', 1), 'down from the first is the second').toBe('timeline');
  });
});

describe('command palette filter', () => {
  it('matches every word of the query anywhere in the label', () => {
    expect(filterCommands('theme dark').map((c) => c.id), 'both words must match').toEqual(['theme-dark']);
    expect(filterCommands('go heat').map((c) => c.id), 'words match inside labels').toEqual(['go-heatmaps']);
  });

  it('lists everything for an empty query and nothing for nonsense', () => {
    expect(filterCommands('').length, 'an empty query lists every command').toBeGreaterThanOrEqual(VIEWS.length);
    expect(filterCommands('zzzz'), 'nonsense matches nothing').toEqual([]);
  });
});

describe('host errors', () => {
  it('keeps the core code and message from a rejected call', () => {
    const err = toHostError({ code: 'keychain_unavailable', message: 'no bus' });
    expect(err, 'a HostError comes back').toBeInstanceOf(HostError);
    expect(err.code, 'with the core code').toBe('keychain_unavailable');
    expect(err.message, 'and its message').toBe('no bus');
  });

  it('turns an unstructured rejection into ipc_failed with the original text', () => {
    const err = toHostError('command app_info not allowed by ACL');
    expect(err.code, 'an unstructured rejection is an IPC failure').toBe('ipc_failed');
    expect(err.message, 'that keeps the original text').toContain('not allowed by ACL');
  });
});
