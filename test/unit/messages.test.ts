import { describe, expect, it } from 'vitest';
import { describeValidationError, epochSeconds, validators } from '../../src/protocol/messages.js';

const update = validators.UpdateJobExecution;
const startNext = validators.StartNextPendingJobExecution;

describe('device request validation', () => {
  it('accepts {} for every operation but update, which needs a status', () => {
    expect(validators.GetPendingJobExecutions({})).toBe(true);
    expect(startNext({})).toBe(true);
    expect(validators.DescribeJobExecution({})).toBe(true);
    expect(update({})).toBe(false);
    expect(describeValidationError(update.errors)).toBe(
      "Value null at 'status' failed to satisfy constraint: Member must not be null",
    );
  });

  it('ignores unknown fields such as the thingName and jobId some AWS clients send', () => {
    expect(update({ status: 'SUCCEEDED', thingName: 'x', jobId: 'y', extra: [1] })).toBe(true);
  });

  it('accepts expectedVersion as a number or a numeric string', () => {
    expect(update({ status: 'IN_PROGRESS', expectedVersion: 2 })).toBe(true);
    expect(update({ status: 'IN_PROGRESS', expectedVersion: '2' })).toBe(true);
    expect(update({ status: 'IN_PROGRESS', expectedVersion: 'two' })).toBe(false);
    expect(update({ status: 'IN_PROGRESS', expectedVersion: 1.5 })).toBe(false);
  });

  it('accepts stepTimeoutInMinutes 1–10080 and, on update only, -1', () => {
    expect(update({ status: 'IN_PROGRESS', stepTimeoutInMinutes: -1 })).toBe(true);
    expect(update({ status: 'IN_PROGRESS', stepTimeoutInMinutes: 10080 })).toBe(true);
    expect(update({ status: 'IN_PROGRESS', stepTimeoutInMinutes: 10081 })).toBe(false);
    expect(update({ status: 'IN_PROGRESS', stepTimeoutInMinutes: 0 })).toBe(false);
    expect(startNext({ stepTimeoutInMinutes: -1 })).toBe(false);
    expect(startNext({ stepTimeoutInMinutes: 5 })).toBe(true);
  });

  describe('statusDetails limits', () => {
    it('accepts 10 pairs of valid keys and printable values of up to 1024 characters', () => {
      const details = Object.fromEntries(
        Array.from({ length: 10 }, (_, i) => [`k:${i}_-`, 'é'.repeat(1024)]),
      );
      expect(update({ status: 'IN_PROGRESS', statusDetails: details })).toBe(true);
    });
    it.each([
      ['11 pairs', Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v']))],
      ['an empty value', { k: '' }],
      ['a value of 1025 characters', { k: 'x'.repeat(1025) }],
      ['a control character', { k: 'a\u0007b' }],
      ['a newline', { k: 'line1\nline2' }],
      ['a key with a space', { 'bad key': 'v' }],
      ['a key of 129 characters', { ['k'.repeat(129)]: 'v' }],
      ['a number value', { k: 1 }],
    ])('refuses %s', (_, details) => {
      expect(update({ status: 'IN_PROGRESS', statusDetails: details })).toBe(false);
    });
  });

  it('refuses a clientToken over 64 characters', () => {
    expect(validators.GetPendingJobExecutions({ clientToken: 'x'.repeat(64) })).toBe(true);
    expect(validators.GetPendingJobExecutions({ clientToken: 'x'.repeat(65) })).toBe(false);
  });

  it('keeps timestamps in integer epoch seconds', () => {
    expect(epochSeconds(new Date('2026-01-01T00:00:00.999Z'))).toBe(1767225600);
  });
});
