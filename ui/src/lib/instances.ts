import type { InstanceView } from '../gen/InstanceView';

/** The services (profiles) the fleet runs, each once, for a filter's choices. */
export function servicesOf(instances: InstanceView[] | null): string[] {
  return [...new Set((instances ?? []).map((i) => i.profile))].sort();
}
