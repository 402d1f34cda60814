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
    expect(viewForShortcut(key('1'))).toBeNull();
    expect(viewForShortcut(key('1', { ctrlKey: true, altKey: true }))).toBeNull();
    expect(viewForShortcut(key('9', { ctrlKey: true }))).toBeNull();
  });

  it('wraps around when moving past either end of the list', () => {
    expect(neighbour('settings', 1)).toBe('fleet');
    expect(neighbour('fleet', -1)).toBe('settings');
    expect(neighbour('fleet', 1)).toBe('timeline');
  });
});

describe('command palette filter', () => {
  it('matches every word of the query anywhere in the label', () => {
    expect(filterCommands('theme dark').map((c) => c.id)).toEqual(['theme-dark']);
    expect(filterCommands('go heat').map((c) => c.id)).toEqual(['go-heatmaps']);
  });

  it('lists everything for an empty query and nothing for nonsense', () => {
    expect(filterCommands('').length).toBeGreaterThanOrEqual(VIEWS.length);
    expect(filterCommands('zzzz')).toEqual([]);
  });
});

describe('host errors', () => {
  it('keeps the core code and message from a rejected call', () => {
    const err = toHostError({ code: 'keychain_unavailable', message: 'no bus' });
    expect(err).toBeInstanceOf(HostError);
    expect(err.code).toBe('keychain_unavailable');
    expect(err.message).toBe('no bus');
  });

  it('turns an unstructured rejection into ipc_failed with the original text', () => {
    const err = toHostError('command app_info not allowed by ACL');
    expect(err.code).toBe('ipc_failed');
    expect(err.message).toContain('not allowed by ACL');
  });
});
