import { describe, expect, it } from 'vitest';
import { InvalidDocumentError, parseJobDocument, splitCommand } from '../../agent/document.js';

const none = new Set<string>();
const step = (action: object) => ({ action });
const cmd = (command: unknown, extra: object = {}) =>
  step({ name: 'run', type: 'runCommand', input: { command }, ...extra });

function reason(doc: unknown, operations = none): string {
  try {
    parseJobDocument(doc, operations);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidDocumentError);
    return (err as Error).message;
  }
  throw new Error('the document was accepted');
}

describe('job documents', () => {
  it('splits a Device Client command line at commas, with \\, for a literal comma and no shell', () => {
    expect(splitCommand('echo,a b,c\\,d,$HOME')).toEqual(['echo', 'a b', 'c,d', '$HOME']);
  });

  it('reads a Device Client document with steps, string booleans and a final step', () => {
    const doc = parseJobDocument(
      {
        version: '1.0',
        includeStdOut: 'true',
        steps: [
          cmd('echo,hi', { ignoreStepFailure: 'true', timeoutSeconds: 2 }),
          step({
            name: 'h',
            type: 'runHandler',
            runAsUser: 'root',
            input: { handler: 'x.sh', args: ['1'], path: 'default' },
          }),
        ],
        finalStep: cmd(['rm', '-f', 'a b']),
      },
      none,
    );
    expect(doc).toEqual({
      kind: 'steps',
      includeStdOut: true,
      steps: [
        {
          name: 'run',
          type: 'runCommand',
          command: ['echo', 'hi'],
          shell: false,
          args: [],
          ignoreStepFailure: true,
          timeoutSeconds: 2,
          onRestart: 'fail',
        },
        {
          name: 'h',
          type: 'runHandler',
          handler: 'x.sh',
          args: ['1'],
          runAsUser: 'root',
          ignoreStepFailure: false,
          onRestart: 'fail',
        },
      ],
      finalStep: {
        name: 'run',
        type: 'runCommand',
        command: ['rm', '-f', 'a b'],
        shell: false,
        args: [],
        ignoreStepFailure: false,
        onRestart: 'fail',
      },
    });
  });

  it('keeps a shell command line whole when the document asks for a shell', () => {
    const doc = parseJobDocument(
      {
        version: '1.0',
        steps: [step({ name: 's', type: 'runCommand', input: { command: 'echo a,b | wc -c', shell: true } })],
      },
      none,
    );
    expect(doc.kind === 'steps' && doc.steps[0]?.command).toEqual(['echo a,b | wc -c']);
  });

  it('dispatches a registered operation and reads an unregistered one as an old-schema handler', () => {
    expect(parseJobDocument({ operation: 'reboot' }, new Set(['reboot']))).toEqual({
      kind: 'operation',
      operation: 'reboot',
    });
    const old = parseJobDocument({ operation: 'install.sh', args: ['pkg'] }, none);
    expect(old.kind === 'steps' && old.steps[0]).toMatchObject({
      type: 'runHandler',
      handler: 'install.sh',
      args: ['pkg'],
    });
  });

  it.each([
    [null, 'JSON object'],
    [{}, '"version": "1.0"'],
    [{ version: '2.0', steps: [] }, 'not supported'],
    [{ version: '1.0', steps: [] }, 'non-empty'],
    [{ version: '1.0', steps: [{ name: 'x' }] }, 'steps[0] must be an object with an action'],
    [
      { version: '1.0', steps: [step({ name: 'x', type: 'runScript', input: {} })] },
      'runHandler or runCommand',
    ],
    [{ version: '1.0', steps: [cmd('')] }, 'input.command is required'],
    [{ version: '1.0', steps: [cmd('echo hi')] }, 'without spaces'],
    [{ version: '1.0', steps: [cmd('echo', { ignoreStepFailure: 'yes' })] }, 'true or false'],
    [{ version: '1.0', steps: [cmd('echo', { timeoutSeconds: 0 })] }, 'timeoutSeconds'],
    [{ version: '1.0', steps: [cmd('echo', { onRestart: 'later' })] }, 'onRestart'],
    [
      { version: '1.0', steps: [step({ name: 'h', type: 'runHandler', input: { handler: '../bin/sh' } })] },
      'no path',
    ],
    [
      {
        version: '1.0',
        steps: [step({ name: 'h', type: 'runHandler', input: { handler: 'a', path: '/usr/bin' } })],
      },
      'may only be "default"',
    ],
    [{ operation: '../../x' }, 'not a registered handler'],
  ])('rejects %j naming the problem', (doc, expected) => {
    expect(reason(doc)).toContain(expected);
  });
});
