import { describe, expect, it } from 'vitest';

import { keepInPlace, scrollerOf } from './scroll';

/** An element whose top on screen is `tops[0]` until `change` runs, then `tops[1]`. */
function movingRow(tops: [number, number]): { row: HTMLElement; move: () => void } {
  const row = document.createElement('button');
  let top = tops[0];
  row.getBoundingClientRect = () => ({ top, bottom: top + 30, left: 0, right: 100, width: 100, height: 30, x: 0, y: top, toJSON: () => ({}) });
  return { row, move: () => (top = tops[1]) };
}

describe('keeping the chosen row in place', () => {
  it('scrolls by as much as a reflow moved the row, so it stays under the pointer', async () => {
    const { row, move } = movingRow([409, 809]);
    const box = { scrollTop: 900 };
    await keepInPlace(row, move, box);
    expect(box.scrollTop, 'the row moved 400 px down: the scroll follows it').toBe(1300);
  });

  it('follows a row that moved up too, and leaves the scroll alone when nothing moved', async () => {
    const up = movingRow([500, 380]);
    const box = { scrollTop: 900 };
    await keepInPlace(up.row, up.move, box);
    expect(box.scrollTop, 'up by 120 px').toBe(780);
    const still = movingRow([500, 500]);
    await keepInPlace(still.row, still.move, box);
    expect(box.scrollTop, 'nothing moved, nothing scrolls').toBe(780);
  });

  it('waits for an asynchronous change before measuring', async () => {
    const { row, move } = movingRow([100, 250]);
    const box = { scrollTop: 0 };
    await keepInPlace(row, () => new Promise<void>((done) => setTimeout(() => (move(), done()), 5)), box);
    expect(box.scrollTop, 'measured after the change settled').toBe(150);
  });

  it('finds the nearest ancestor that scrolls', () => {
    const outer = document.createElement('main');
    outer.style.overflowY = 'auto';
    const inner = document.createElement('div');
    const row = document.createElement('button');
    inner.append(row);
    outer.append(inner);
    document.body.append(outer);
    expect(scrollerOf(row), 'the main that scrolls, not the plain div between').toBe(outer);
    outer.remove();
    expect(scrollerOf(document.createElement('span')), 'nothing scrolls a detached element').toBeNull();
  });
});
