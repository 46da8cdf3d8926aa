import type { Columns } from './columns.ts';
import type { Batch, Inputs, Ports } from './node.ts';
import { _, type Stream } from './stream.ts';
import { sidePorts, type Plan, type PlannedNode } from './validate.ts';

/** How a node's output reaches the nodes that read it: directly, through forks, or replayed as a side table. */

export interface ConsumerInfo {
  count: number;
  side: boolean;
}

export function countConsumers(plan: Plan): Map<string, ConsumerInfo> {
  const result = new Map<string, ConsumerInfo>();
  for (const node of plan.nodes) {
    const side = new Set(sidePorts(node.def));
    for (const input of node.inputs) {
      const info = result.get(input.node) ?? { count: 0, side: false };
      info.count += 1;
      info.side ||= side.has(input.port);
      result.set(input.node, info);
    }
  }
  return result;
}

/**
 * Hands each consumer its own view of a node's output. One consumer reads it directly; several
 * share it through highland forks (backpressure from the slowest). A side input is a small table:
 * it is collected once and replayed to every consumer, so a node can hold it while it waits on
 * another input without stalling the fork.
 */
export function fanOut(stream: Stream<Batch>, info: ConsumerInfo, all: Stream<unknown>[]): () => Stream<Batch> {
  if (info.side) {
    let collected: Promise<Batch[]> | undefined;
    return () => {
      collected ??= stream.collect().toPromise(Promise);
      const table = collected;
      // A failed run destroys the replay, possibly before the table arrives: nothing may be pushed then.
      const replay: Stream<Batch> = _<Batch>((push) => {
        table.then(
          (batches) => {
            if (isEnded(replay)) return;
            for (const batch of batches) push(null, batch);
            push(null, _.nil);
          },
          (error: Error) => {
            if (isEnded(replay)) return;
            push(error);
            push(null, _.nil);
          },
        );
      });
      all.push(replay as Stream<unknown>);
      return replay;
    };
  }
  if (info.count <= 1) return () => stream;
  return () => {
    const fork = stream.fork();
    all.push(fork as Stream<unknown>);
    return fork;
  };
}

/** highland sets `ended` once a stream has finished or been destroyed; its typings leave it out. */
const isEnded = (stream: object) => (stream as { ended?: boolean }).ended === true;

/** A node's inputs: each port's stream (by `from`), all of them in order, and the columns each producer declares. */
export function collectInputs(
  planned: PlannedNode,
  outputsOf: Map<string, () => Stream<Batch>>,
  plan: Plan,
): Inputs<Ports> {
  const ports: Record<string, Stream<Batch>> = {};
  const columns: Record<string, Columns | undefined> = {};
  const list: Stream<Batch>[] = [];
  for (const input of planned.inputs) {
    const stream = outputsOf.get(input.node)!();
    list.push(stream);
    ports[input.port] ??= stream;
    const producer = plan.nodes.find((node) => node.spec.id === input.node)?.def;
    if (producer && producer.kind !== 'sink') columns[input.port] ??= producer.columns;
  }
  return { ports, list, columns };
}
