// @vitest-environment node
// The layering is a lint rule, so it holds for code not written yet: this checks the rule itself.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint();

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('the layering lint rules', () => {
  it('refuse a view that reaches the host itself', async () => {
    const view = `<script lang="ts">
  import { getHost } from '../lib/context';
  import { toHostError } from '../lib/host';
  void toHostError(getHost().overview());
</script>
`;
    const found = await problems('src/views/Fleet.svelte', view);
    expect(found.filter((p) => p.includes('Only controllers')).length, 'neither the host module nor getHost').toBe(2);
    expect(found.some((p) => p.includes('make no host calls')), 'nor a call of getHost').toBe(true);
  });

  it('refuse a component that calls a host it was handed', async () => {
    const component = `<script lang="ts">
  import type { Host } from '../../lib/host';
  let { host }: { host: Host } = $props();
  void host.instances();
</script>
`;
    const found = await problems('src/domains/fleet/InstanceTable.svelte', component);
    expect(found, 'the call is refused, the type import is not').toEqual([
      'no-restricted-syntax: Views and components make no host calls: call the domain controller.',
    ]);
  });

  it('let a controller call the host', async () => {
    const controller = `import { toHostError, type Host } from '../../lib/host';
export async function load(host: Host) {
  try {
    return await host.instances();
  } catch (e) {
    throw toHostError(e);
  }
}
`;
    expect(await problems('src/domains/fleet/fleet.svelte.ts', controller), 'controllers are where host calls live').toEqual([]);
  });
});
