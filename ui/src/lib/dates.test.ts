import { describe, expect, it } from 'vitest';

import { addDays, dayInWords, dayStartUtc, dayText, localTimeText, parseDay, parseLocalTime, timeInWords, utcDay } from './dates';

describe('a typed day', () => {
  it('reads year-month-day and nothing that could be read two ways', () => {
    expect(parseDay('2026-12-06'), 'ISO order').toEqual({ kind: 'ok', value: { year: 2026, month: 12, day: 6 } });
    expect(parseDay(' 2026-2-3 '), 'single digits and spaces around').toEqual({ kind: 'ok', value: { year: 2026, month: 2, day: 3 } });
    expect(parseDay('').kind, 'an empty field is empty, not wrong').toBe('empty');
    for (const ambiguous of ['12/06/2026', '06.12.2026', 'Dec 6, 2026', '2026-12']) {
      expect(parseDay(ambiguous).kind, `${ambiguous} is refused: is 12/06 June or December?`).toBe('invalid');
    }
  });

  it('says what is wrong with a day that does not exist', () => {
    expect(parseDay('2026-02-30'), 'February has no 30th').toEqual({ kind: 'invalid', reason: '2026-02 has no day 30' });
    expect(parseDay('2026-13-01'), 'nor is there a 13th month').toEqual({ kind: 'invalid', reason: 'there is no month 13' });
    expect(parseDay('2028-02-29').kind, 'a leap day in a leap year is fine').toBe('ok');
    expect(parseDay('1969-12-31').kind, 'before the Unix epoch is refused').toBe('invalid');
  });

  it('is stored as the start of its UTC day and shown in the app\'s words', () => {
    const day = { year: 2026, month: 12, day: 6 };
    expect(dayStartUtc(day), 'the core keeps due dates as the start of the UTC day').toBe(Date.UTC(2026, 11, 6) / 1000);
    expect(utcDay(dayStartUtc(day)), 'and reads back as the same day').toEqual(day);
    expect(dayText(day), 'the field\'s form').toBe('2026-12-06');
    expect(dayInWords(day), 'the app\'s words name the same day in any zone').toMatch(/Dec.*6.*2026/);
    expect(addDays(day, 90), 'ninety days on crosses the year').toEqual({ year: 2027, month: 3, day: 6 });
  });
});

describe('a typed local time', () => {
  it('reads a day with an hour and minute, seconds if given, in local time', () => {
    expect(parseLocalTime('2026-11-23 14:05'), 'space-separated').toEqual({ kind: 'ok', value: new Date(2026, 10, 23, 14, 5).getTime() });
    expect(parseLocalTime('2026-11-23T14:05:09'), 'T-separated, with seconds').toEqual({ kind: 'ok', value: new Date(2026, 10, 23, 14, 5, 9).getTime() });
    expect(parseLocalTime('2026-11-23'), 'a day alone is its start').toEqual({ kind: 'ok', value: new Date(2026, 10, 23).getTime() });
  });

  it('says what is wrong instead of guessing', () => {
    expect(parseLocalTime('23/11/2026 14:05').kind, 'day-first is ambiguous').toBe('invalid');
    expect(parseLocalTime('2026-11-23 24:00'), 'hour 24 is no time of day').toEqual({ kind: 'invalid', reason: '24:00 is not a time of day' });
    expect(parseLocalTime('2026-11-31 10:00'), 'November has 30 days').toEqual({ kind: 'invalid', reason: '2026-11 has no day 31' });
    expect(parseLocalTime('  ').kind, 'blank is empty').toBe('empty');
  });

  it('round-trips through the fields\' form and reads in the app\'s words with the year', () => {
    const at = new Date(2026, 10, 23, 14, 5).getTime();
    expect(localTimeText(at), 'the form a field takes').toBe('2026-11-23 14:05');
    expect(parseLocalTime(localTimeText(at)), 'and reads back').toEqual({ kind: 'ok', value: at });
    expect(timeInWords(at), 'the echo names the year and the time').toMatch(/2026.*14:05/);
  });
});
