// Small formatters for the one-line reasons every decision carries.

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** "storage-1, storage-2" or "none". */
export function podList(pods: readonly string[]): string {
  return pods.length === 0 ? 'none' : pods.join(', ');
}
