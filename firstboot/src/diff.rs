//! A small unified diff (`--diff`): configuration files are short, so a longest common
//! subsequence table after trimming the common head and tail is plenty.

const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep,
    Del,
    Add,
}

/// `diff -u` style output for `old` → `new` with labels `a/<path>` and `b/<path>`;
/// empty when the texts are equal. `old` is `None` for a new file.
pub fn unified(path: &str, old: Option<&str>, new: &str) -> String {
    let a: Vec<&str> = old.map(|t| t.lines().collect()).unwrap_or_default();
    let b: Vec<&str> = new.lines().collect();
    if old == Some(new) {
        return String::new();
    }
    let ops = edit_script(&a, &b);
    let rel = path.trim_start_matches('/');
    let mut out = String::new();
    match old {
        Some(_) => out.push_str(&format!("--- a/{rel}\n")),
        None => out.push_str("--- /dev/null\n"),
    }
    out.push_str(&format!("+++ b/{rel}\n"));

    // Positions (index into ops) of the changes, grouped into hunks.
    let changes: Vec<usize> = (0..ops.len()).filter(|&i| ops[i] != Op::Keep).collect();
    let mut i = 0;
    while i < changes.len() {
        let start = changes[i].saturating_sub(CONTEXT);
        let mut end = changes[i];
        while i < changes.len() && changes[i] <= end + 2 * CONTEXT + 1 {
            end = changes[i];
            i += 1;
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        // Line numbers of the hunk's first line in a and b.
        let (mut la, mut lb) = (0, 0);
        for op in &ops[..start] {
            match op {
                Op::Keep => {
                    la += 1;
                    lb += 1
                }
                Op::Del => la += 1,
                Op::Add => lb += 1,
            }
        }
        let (mut ca, mut cb) = (0, 0);
        let mut body = String::new();
        let (mut ia, mut ib) = (la, lb);
        for op in &ops[start..end] {
            match op {
                Op::Keep => {
                    body.push_str(&format!(" {}\n", a[ia]));
                    ia += 1;
                    ib += 1;
                    ca += 1;
                    cb += 1;
                }
                Op::Del => {
                    body.push_str(&format!("-{}\n", a[ia]));
                    ia += 1;
                    ca += 1;
                }
                Op::Add => {
                    body.push_str(&format!("+{}\n", b[ib]));
                    ib += 1;
                    cb += 1;
                }
            }
        }
        let first = |l: usize, c: usize| if c == 0 { l } else { l + 1 };
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            first(la, ca),
            ca,
            first(lb, cb),
            cb
        ));
        out.push_str(&body);
    }
    out
}

fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let (n, m) = (ma.len(), mb.len());
    // lcs[i][j]: LCS length of ma[i..] and mb[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if ma[i] == mb[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let mut ops = vec![Op::Keep; head];
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && ma[i] == mb[j] {
            ops.push(Op::Keep);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
            ops.push(Op::Del);
            i += 1;
        } else {
            ops.push(Op::Add);
            j += 1;
        }
    }
    ops.extend(std::iter::repeat_n(Op::Keep, tail));
    ops
}

/// The diff of a removed file.
pub fn deleted(path: &str, old: &str) -> String {
    let rel = path.trim_start_matches('/');
    let lines: Vec<&str> = old.lines().collect();
    let mut out = format!(
        "--- a/{rel}\n+++ /dev/null\n@@ -1,{} +0,0 @@\n",
        lines.len()
    );
    for l in lines {
        out.push_str(&format!("-{l}\n"));
    }
    out
}
