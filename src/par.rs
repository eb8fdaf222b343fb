//! The one way hvseed spreads bulk per-item work (hosts to resolve or render, files to
//! `stat`) over the cores: the items are cut into contiguous parts, one scoped thread
//! per part, and the results come back in the items' order, so the output is the same
//! as one pass over the items would give.
//!
//! Threshold: a part never holds fewer than `min_chunk` items, and there are never more
//! parts than [`workers`]. So fewer than `2 * min_chunk` items are one part, run on the
//! calling thread without starting any; `n` items use `min(workers, n / min_chunk)`
//! threads. `min_chunk` is what makes a thread worth starting: a few hundred hosts to
//! resolve or render, a thousand or so files to `stat`.

use std::ops::Range;

/// How many threads bulk work uses: the cores, at most 8.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// The index ranges `0..n` is cut into (see the module's threshold): contiguous, in
/// order, as even as possible. Empty for `n == 0`.
pub fn ranges(n: usize, min_chunk: usize) -> Vec<Range<usize>> {
    ranges_over(n, min_chunk, workers())
}

/// [`ranges`] for a given number of workers: `parts` parts whose sizes differ by at
/// most one (the first `n % parts` hold one more), so none is below `n / parts`.
fn ranges_over(n: usize, min_chunk: usize, workers: usize) -> Vec<Range<usize>> {
    if n == 0 {
        return Vec::new();
    }
    let parts = (n / min_chunk.max(1)).clamp(1, workers.max(1));
    let (size, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = size + usize::from(i < extra);
            start += len;
            start - len..start
        })
        .collect()
}

/// `f(first, part)` for each part of `items` (`first`: the index of the part's first
/// item), each on a thread of its own when there is more than one part; the results
/// in the parts' order.
pub fn par_chunks<T: Sync, R: Send>(
    items: &[T],
    min_chunk: usize,
    f: impl Fn(usize, &[T]) -> R + Sync,
) -> Vec<R> {
    let parts = ranges(items.len(), min_chunk);
    if parts.len() <= 1 {
        return parts.into_iter().map(|r| f(r.start, &items[r])).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let threads: Vec<_> = parts
            .into_iter()
            .map(|r| s.spawn(move || f(r.start, &items[r])))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// `items.iter().map(f).collect()`, spread over the cores as [`par_chunks`] does.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    min_chunk: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    par_chunks(items, min_chunk, |_, part| {
        part.iter().map(&f).collect::<Vec<R>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_index_once_in_order_and_respect_the_threshold() {
        for w in 1..=9 {
            for min in [1, 2, 3, 7, 128, 1024] {
                for n in [
                    0, 1, 2, 5, 10, 127, 128, 255, 256, 257, 1000, 2047, 2048, 10_000,
                ] {
                    let r = ranges_over(n, min, w);
                    let at = format!("n={n} min={min} workers={w}: {r:?}");
                    let flat: Vec<usize> = r.iter().cloned().flatten().collect();
                    assert_eq!(flat, (0..n).collect::<Vec<_>>(), "{at}");
                    assert!(r.len() <= w, "{at}");
                    if r.len() > 1 {
                        assert!(r.iter().all(|p| p.len() >= min), "{at}");
                    }
                    if n >= 2 * min && w > 1 {
                        assert!(r.len() > 1, "{at}");
                    }
                    let (lo, hi) = (
                        r.iter().map(|p| p.len()).min(),
                        r.iter().map(|p| p.len()).max(),
                    );
                    assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= 1, "{at}");
                }
            }
        }
        assert_eq!(
            ranges_over(3, 0, 8),
            ranges_over(3, 1, 8),
            "a zero threshold is one"
        );
        assert_eq!(ranges_over(10, 3, 8), vec![0..4, 4..7, 7..10]);
        assert_eq!(ranges_over(511, 256, 2), vec![0..511]);
        assert_eq!(ranges_over(512, 256, 2), vec![0..256, 256..512]);
    }

    #[test]
    fn par_map_keeps_the_order_and_par_chunks_the_first_indices() {
        let items: Vec<u32> = (0..5000).collect();
        assert_eq!(
            par_map(&items, 100, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        let firsts = par_chunks(&items, 100, |first, part| {
            assert_eq!(part[0] as usize, first);
            first
        });
        let expected: Vec<usize> = ranges(items.len(), 100).iter().map(|r| r.start).collect();
        assert_eq!(firsts, expected);
        assert!(par_map(&[] as &[u32], 1, |x| *x).is_empty());
    }

    #[test]
    fn more_than_one_part_runs_on_more_than_one_thread() {
        if workers() < 2 {
            return;
        }
        let items: Vec<u32> = (0..400).collect();
        let ids = par_chunks(&items, 100, |_, _| std::thread::current().id());
        assert!(ids.len() > 1);
        assert!(ids.iter().all(|id| *id != std::thread::current().id()));
        let one = par_chunks(&items[..150], 100, |_, _| std::thread::current().id());
        assert_eq!(one, vec![std::thread::current().id()]);
    }
}
