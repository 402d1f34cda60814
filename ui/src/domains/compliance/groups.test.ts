import { describe, expect, it } from 'vitest';

import { sampleItem } from '../../fakes';
import { groupItems } from './groups';

describe('the checklist groups', () => {
  it('puts failures first and gathers the manual items nobody took on, whatever their section', () => {
    const items = [
      sampleItem('pre.a', { section: 'Before deploying', automated: false, state: 'due', owner: null, due_at: null }),
      sampleItem('pre.b', { section: 'Before deploying', automated: true, state: 'pass' }),
      sampleItem('run.c', { section: 'Running', automated: true, state: 'fail' }),
      sampleItem('run.d', { section: 'Running', automated: false, state: 'due', owner: 'alice', due_at: null }),
      sampleItem('run.e', { section: 'Running', automated: false, state: 'due', owner: null, due_at: 1, overdue: true }),
      sampleItem('post.f', { section: 'After', automated: true, state: 'pass', reopened: true }),
    ];
    const groups = groupItems(items);
    expect(
      groups.attention.map((i) => i.id),
      'failing, overdue and re-opened items lead, in checklist order',
    ).toEqual(['run.c', 'run.e', 'post.f']);
    expect(groups.toSetUp.map((i) => i.id), 'a manual item with no owner, date or sign-off is to set up').toEqual([
      'pre.a',
    ]);
    expect(
      groups.sections.map(([s, list]) => [s, list.map((i) => i.id)]),
      'the rest by section; a section left empty is not shown',
    ).toEqual([
      ['Before deploying', ['pre.b']],
      ['Running', ['run.d']],
    ]);
  });
});
