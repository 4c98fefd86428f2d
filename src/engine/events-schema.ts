/**
 * The JSON Schema of a run's `--json` document and of its events (events.ts), printed by
 * `verdandi schema --events`. One entry per event type: the Record below does not compile when an
 * event type is added without its schema.
 */
import type { RunEventType } from './events.js';

type Json = Record<string, unknown>;

const str = { type: 'string' };
const int = { type: 'integer', minimum: 0 };
const bool = { type: 'boolean' };

/** An event's schema: its `type`, `at`, and these properties (`optional` may be absent). */
function event(type: RunEventType, props: Json, optional: Json = {}): Json {
  return {
    type: 'object',
    properties: { type: { const: type }, at: int, ...props, ...optional },
    required: ['type', 'at', ...Object.keys(props)],
    additionalProperties: false,
  };
}

const taskStatus = { enum: ['ok', 'changed', 'failed', 'skipped'] };

const EVENTS: Record<RunEventType, Json> = {
  'run-started': event('run-started', {
    command: str,
    env: str,
    hosts: { type: 'array', items: str },
    check: bool,
  }),
  'host-connected': event('host-connected', { host: str }),
  'host-unreachable': event('host-unreachable', { host: str, reason: str, step: str }),
  'host-interrupted': event('host-interrupted', { host: str, detail: str }),
  'host-failed': event('host-failed', { host: str, message: str }),
  lock: event(
    'lock',
    {
      host: str,
      state: { enum: ['taken', 'waiting', 'broken', 'taken-over', 'refused', 'released'] },
      message: str,
    },
    { holder: str },
  ),
  task: event(
    'task',
    { host: str, label: str, status: taskStatus, roundTrips: int },
    // ignored: a failure that `ignoreErrors` ignores (counted in the host's `ignored`, not `failed`).
    { detail: str, failure: str, ignored: bool },
  ),
  diff: event('diff', { host: str, text: str }),
  handler: event('handler', { host: str, unit: str, name: str, state: { const: 'pending' } }),
  step: event(
    'step',
    {
      host: str,
      site: str,
      step: str,
      status: { enum: ['started', 'ok', 'failed', 'interrupted', 'warning', 'skipped'] },
      detail: str,
      roundTrips: int,
    },
    { output: str },
  ),
  'deploy-logged': event('deploy-logged', {
    host: str,
    entry: {
      type: 'object',
      properties: {
        action: { enum: ['deploy', 'rollback'] },
        site: str,
        release: str,
        time: str,
        by: str,
        outcome: str,
        commit: str,
        branch: str,
        step: str,
        from: str,
      },
      required: ['action', 'site', 'release', 'time', 'by', 'outcome'],
    },
  }),
  'site-done': event(
    'site-done',
    {
      host: str,
      site: str,
      action: { enum: ['deploy', 'rollback'] },
      ok: bool,
      ref: str,
      durationMs: int,
    },
    { commit: str, release: str, failedStep: str, detail: str, migrated: bool },
  ),
  'batch-stopped': event('batch-stopped', {
    bad: int,
    of: int,
    maxFailPercentage: { type: 'number' },
    notStarted: int,
  }),
  result: event('result', { data: { type: 'object' } }, { host: str }),
  message: event(
    'message',
    { level: { enum: ['info', 'warn', 'verbose', 'activity'] }, text: str },
    { host: str },
  ),
  'run-ended': event(
    'run-ended',
    {
      exitCode: int,
      durationMs: int,
      check: bool,
      roundTrips: { type: 'object', additionalProperties: int },
    },
    { interruptedBy: { enum: ['SIGINT', 'SIGTERM'] } },
  ),
};

/** The schema of the `--json` document of every command that walks hosts, its events under `$defs`. */
export function eventsSchema(): Json {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'verdandi --json',
    description:
      'The --json document of provision, run, deploy, rollback, status, backup and restore: the counts per host, the exit code, every event of the run, and the fields of the command (deploy: outcomes; status: sites; backup: hosts.<name>.dumps).',
    type: 'object',
    properties: {
      command: str,
      env: str,
      check: bool,
      exitCode: int,
      durationMs: int,
      interruptedBy: { enum: ['SIGINT', 'SIGTERM'] },
      hosts: {
        type: 'object',
        additionalProperties: {
          type: 'object',
          properties: {
            // A count of tasks; backup and restore keep their `ok: true|false` of the host.
            ok: { type: ['integer', 'boolean'] },
            changed: int,
            failed: int,
            skipped: int,
            ignored: int,
            ignoredTasks: { type: 'array', items: str },
            // Each task's verdict, in the order the tasks ran.
            tasks: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  task: str,
                  status: { enum: ['ok', 'changed', 'failed', 'skipped', 'ignored'] },
                },
                required: ['task', 'status'],
              },
            },
            unreachable: bool,
            interrupted: bool,
            roundTrips: int,
          },
          required: ['ok', 'changed', 'failed', 'skipped', 'unreachable', 'interrupted', 'roundTrips'],
        },
      },
      events: { type: 'array', items: { $ref: '#/$defs/event' } },
    },
    required: ['command', 'env', 'check', 'exitCode', 'durationMs', 'hosts', 'events'],
    $defs: {
      event: { oneOf: Object.keys(EVENTS).map((type) => ({ $ref: `#/$defs/${type}` })) },
      ...EVENTS,
    },
  };
}
