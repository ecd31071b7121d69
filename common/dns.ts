// DNS-1123 label: what Kubernetes accepts as a label value used in object names (max 63 chars).
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1123Label(value: string): boolean {
  return value.length > 0 && value.length <= 63 && DNS1123_LABEL.test(value);
}

/** A sentence saying why `value` is not a DNS-1123 label, or null when it is one. */
export function dns1123LabelProblem(value: string): string | null {
  if (value.length === 0) return 'it is empty';
  if (value.length > 63) return `it is ${value.length} characters long (at most 63)`;
  if (!DNS1123_LABEL.test(value)) {
    return 'it must consist of lower-case letters, digits and "-", and start and end with a letter or digit';
  }
  return null;
}
