import { readFileSync } from 'node:fs';
import path from 'node:path';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { repoRoot } from '../helpers/cli.ts';

interface Anime {
  anime_id: number;
  name: string;
  english_name: string | null;
  semantic_id: string;
}

export const fixtureAnime = (): Anime[] =>
  readFileSync(path.join(repoRoot, 'fixtures/semantic_ids.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Anime);

/** Text that tends to break tokenizer parity: Unicode, odd whitespace, near-miss token strings. */
const AWKWARD = [
  'Ōkami  Café —  東京 ☆ 🎌',
  'line one\r\nline two\ttabbed',
  '"quoted" and \'single\'',
  '<L9_1> <L1_99999> <anime_start <L1_3 L1_3>',
  '  leading and trailing  ',
  'naïve façade ½ ★★',
  'x<L1_5>y<anime_end>z',
];
const GENRES = ['Action', 'Drama', 'Mystery', 'Shounen', 'Comedy', 'Romance', 'Sci-Fi'];
const STATUS = ['<liked>', '<watch>', '<dropped>', '<disliked>'];

/**
 * Rows in the prep output's format (Task A metadata, B masked watch sequences, C reasoning),
 * drawn from the given anime. Few anime make a set the tiny model can visibly learn; all of them
 * plus `awkward` text make a tokenizer stress test.
 */
export function prepRows(count: number, anime: Anime[], options: { seed?: number; awkward?: boolean } = {}) {
  const rng = xoroshiro128plus(options.seed ?? 7);
  const pick = <T>(list: readonly T[]): T => list[uniformInt(rng, 0, list.length - 1)]!;
  const extra = () => (options.awkward && uniformInt(rng, 0, 3) === 0 ? ` ${pick(AWKWARD)}` : '');
  const title = (a: Anime) => a.english_name ?? a.name;
  return Array.from({ length: count }, (_, i) => {
    const example_id = `prep_${String(i + 1).padStart(9, '0')}`;
    const a = pick(anime);
    const kind = i % 10;
    if (kind < 6) {
      const template = pick(['sid_to_title', 'title_to_sid', 'sid_to_genres'] as const);
      const [input, output] =
        template === 'sid_to_title'
          ? [`The anime ${a.semantic_id} has the title${extra()}`, title(a)]
          : template === 'title_to_sid'
            ? [`The anime titled '${title(a)}'${extra()} has semantic id`, a.semantic_id]
            : [
                `The anime ${a.semantic_id} belongs to the genres`,
                `${GENRES[a.anime_id % 7]}, ${GENRES[(a.anime_id >> 3) % 7]}${extra()}`,
              ];
      return {
        example_id,
        task: 'A',
        input,
        output,
        anime_ids: [a.anime_id],
        user_id: null,
        meta: { template_id: template },
      };
    }
    if (kind < 9) {
      const history = Array.from({ length: 3 + uniformInt(rng, 0, 5) }, () => pick(anime));
      const masked = uniformInt(rng, 0, history.length - 1);
      const watched = history.map(
        (h, k) => `<anime_start>${k === masked ? '[MASK]' : h.semantic_id}<anime_end> ${pick(STATUS)}`,
      );
      return {
        example_id,
        task: 'B',
        input: `A user watched ${watched.join(' then watched ')}${extra()}`,
        output: history[masked]!.semantic_id,
        anime_ids: history.map((h) => h.anime_id),
        user_id: 1000 + i,
        meta: {
          template_id: 'watch_sequence_mask',
          mask_mode: 'random',
          mask_index: masked,
          history_len: history.length,
        },
      };
    }
    return {
      example_id,
      task: 'C',
      input: `A user who liked ${a.semantic_id} would enjoy it because it has`,
      output: `${GENRES[a.anime_id % 7]} and ${GENRES[(a.anime_id >> 2) % 7]} elements${extra()}`,
      anime_ids: [a.anime_id],
      user_id: 2000 + i,
      meta: { template_id: 'reasoning_single', kind: 'single' },
    };
  });
}
