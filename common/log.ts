import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogContext {
  component: 'webhook' | 'agent' | 'kubelet' | 'controlplane' | 'demo' | 'cli' | 'test' | 'bench';
  cluster?: string;
  pod?: string;
  namespace?: string;
}

/**
 * A structured (JSON) pino logger with the component and, for agents, the cluster and pod in every
 * line. `term` returns the current coordinator term, added to every line when given. `file` sends
 * the lines to a file instead of stdout (the demo keeps its terminal for people).
 * Level from SHOAL_LOG_LEVEL (default info); SHOAL_LOG_LEVEL=silent turns logs off in tests.
 */
export function createLogger(ctx: LogContext, term?: () => number | undefined, file?: string): Logger {
  const options = {
    level: process.env.SHOAL_LOG_LEVEL ?? 'info',
    base: { ...ctx },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(term ? { mixin: () => ({ term: term() ?? null }) } : {}),
  };
  return file ? pino(options, pino.destination({ dest: file, mkdir: true, sync: false })) : pino(options);
}
