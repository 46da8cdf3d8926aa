/** General instruction rows in the shapes the public instruction datasets use, reduced to one exchange. */

export interface Exchange {
  system?: string;
  input: string;
  output: string;
}

type Turn = { role: string; content: string };

const ROLE: Record<string, string> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
};

const str = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** The first system message, the first user turn and the assistant turn that answers it. */
function fromTurns(turns: Turn[]): Exchange | undefined {
  const system = turns.find((t) => t.role === 'system')?.content;
  const user = turns.findIndex((t) => t.role === 'user');
  const answer = turns.findIndex((t, i) => i > user && t.role === 'assistant');
  if (user < 0 || answer < 0) return undefined;
  return { ...(system ? { system } : {}), input: turns[user]!.content, output: turns[answer]!.content };
}

function turnsOf(list: unknown, roleKey: string, textKey: string): Turn[] | undefined {
  if (!Array.isArray(list)) return undefined;
  const turns: Turn[] = [];
  for (const entry of list) {
    const role = ROLE[String((entry as Record<string, unknown>)?.[roleKey] ?? '')];
    const content = str((entry as Record<string, unknown>)?.[textKey]);
    if (!role || content === undefined) return undefined;
    turns.push({ role, content });
  }
  return turns;
}

/**
 * One row as a single exchange, from the shapes the train spec lists: `instruction`/`output`
 * (with an optional Alpaca-style `input` appended to the instruction), `prompt`/`response`,
 * `conversations` of {from, value} (SlimOrca, OpenHermes) or `messages` of {role, content};
 * a `system` field or turn becomes the system message. Undefined when the row has none of them.
 */
export function toExchange(row: Record<string, unknown>): Exchange | undefined {
  const system = str(row.system) || str(row.system_prompt);
  const withSystem = (e: Exchange): Exchange => (system && !e.system ? { system, ...e } : e);
  const instruction = str(row.instruction);
  const output = str(row.output);
  if (instruction !== undefined && output !== undefined) {
    const extra = str(row.input);
    return withSystem({ input: extra ? `${instruction}\n\n${extra}` : instruction, output });
  }
  const prompt = str(row.prompt);
  const response = str(row.response);
  if (prompt !== undefined && response !== undefined) return withSystem({ input: prompt, output: response });
  const turns = turnsOf(row.conversations, 'from', 'value') ?? turnsOf(row.messages, 'role', 'content');
  const exchange = turns && fromTurns(turns);
  return exchange && withSystem(exchange);
}
