//! libphonenumber's regular expressions, matched without compiling them.
//!
//! Compiling the expressions of a region (the crate does it with the `regex` crate, after a
//! syntax check of every expression of the region) is most of the cost of the first phone number
//! a process reads. The expressions are small and always run over a national number of at most
//! 17 ASCII digits, so a backtracking matcher over the expression's tree is enough: parsing one
//! takes microseconds and nothing is compiled.
//!
//! The syntax covered is what the metadata uses: literals, classes (`[0-9]`, `[2-9]`, `[^…]`),
//! `\d`, groups (capturing and `(?:…)`), alternation and the quantifiers `?`, `*`, `+`, `{n}`,
//! `{n,}`, `{n,m}` (greedy or lazy). Whitespace is ignored, as the crate builds its expressions
//! with `ignore_whitespace`. Anything else is not parsed ([`Pattern::parse`] gives `None`) and
//! the caller leaves the number to the crate.
//!
//! Matching follows the `regex` crate's leftmost-first semantics at the start of the input, the
//! only place the crate's parser and validator look at (`find` whose match starts at 0): the
//! first match in priority order (greedy repetitions longest first, alternatives left to
//! right), with the last text each group matched.

/// A parsed expression.
#[derive(Debug)]
pub(super) struct Pattern {
    nodes: Vec<Node>,
    /// Capturing groups (group 0, the whole match, not counted).
    groups: usize,
}

#[derive(Debug)]
enum Node {
    /// One ASCII byte of this set (bit `b` for byte `b`).
    Set(u128),
    /// `^`: the start of the input.
    Start,
    /// `$`: the end of the input.
    End,
    Group {
        alternatives: Vec<Vec<Node>>,
        /// Index of a capturing group (0 for group 1).
        capture: Option<usize>,
    },
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
}

impl Node {
    fn can_match_empty(&self) -> bool {
        match self {
            Node::Set(_) => false,
            Node::Start | Node::End => true,
            Node::Group { alternatives, .. } => alternatives
                .iter()
                .any(|nodes| nodes.iter().all(Node::can_match_empty)),
            Node::Repeat { node, min, .. } => *min == 0 || node.can_match_empty(),
        }
    }
}

/// The match at the start of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Match {
    /// Where it ends.
    pub end: usize,
    /// The span of each capturing group (`groups[0]` is group 1), if it took part.
    pub groups: Vec<Option<(usize, usize)>>,
}

const DIGITS: u128 = 0x3ff << b'0';
/// Nesting this deep is not an expression of the metadata.
const MAX_DEPTH: usize = 32;

impl Pattern {
    /// `None` for syntax this matcher does not cover.
    pub(super) fn parse(source: &str) -> Option<Pattern> {
        let mut parser = Parser {
            bytes: source.as_bytes(),
            at: 0,
            groups: 0,
        };
        let alternatives = parser.alternatives(0)?;
        if parser.at != parser.bytes.len() {
            return None; // an unbalanced `)`
        }
        Some(Pattern {
            nodes: vec![Node::Group {
                alternatives,
                capture: None,
            }],
            groups: parser.groups,
        })
    }

    /// Capturing groups in the expression.
    pub(super) fn groups(&self) -> usize {
        self.groups
    }

    /// Whether some match starts at the start of `input` (the crate's `find(…).start() == 0`).
    pub(super) fn matches_start(&self, input: &str) -> bool {
        let mut state = State {
            input: input.as_bytes(),
            groups: vec![None; self.groups],
        };
        seq(&self.nodes, 0, &mut state, &mut |_, _| true)
    }

    /// The leftmost-first match at the start of `input`, with its groups.
    pub(super) fn match_start(&self, input: &str) -> Option<Match> {
        let mut state = State {
            input: input.as_bytes(),
            groups: vec![None; self.groups],
        };
        let mut found = None;
        seq(&self.nodes, 0, &mut state, &mut |end, state| {
            found = Some(Match {
                end,
                groups: state.groups.clone(),
            });
            true
        });
        found
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    groups: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Option<u8> {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn alternatives(&mut self, depth: usize) -> Option<Vec<Vec<Node>>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut alternatives = vec![self.sequence(depth)?];
        while self.eat(b'|') {
            alternatives.push(self.sequence(depth)?);
        }
        Some(alternatives)
    }

    fn sequence(&mut self, depth: usize) -> Option<Vec<Node>> {
        let mut nodes = Vec::new();
        while let Some(byte) = self.peek() {
            if matches!(byte, b'|' | b')') {
                break;
            }
            let atom = self.atom(depth)?;
            nodes.push(self.quantified(atom)?);
        }
        Some(nodes)
    }

    fn atom(&mut self, depth: usize) -> Option<Node> {
        let byte = self.peek()?;
        self.at += 1;
        match byte {
            b'(' => {
                let capture = if self.eat(b'?') {
                    if !self.eat(b':') {
                        return None; // flags, look-around, names: not in the metadata
                    }
                    None
                } else {
                    self.groups += 1;
                    Some(self.groups - 1)
                };
                let alternatives = self.alternatives(depth + 1)?;
                self.eat(b')').then_some(Node::Group {
                    alternatives,
                    capture,
                })
            }
            b'[' => self.class().map(Node::Set),
            b'\\' => self.escape().map(Node::Set),
            b'.' => Some(Node::Set(!(1u128 << b'\n'))),
            b'^' => Some(Node::Start),
            b'$' => Some(Node::End),
            b'*' | b'+' | b'?' | b'{' | b'#' | b']' | b'}' => None,
            b if b.is_ascii() => Some(Node::Set(1u128 << b)),
            _ => None,
        }
    }

    /// After `\`: `\d` or an escaped ASCII punctuation character.
    fn escape(&mut self) -> Option<u128> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        match byte {
            b'd' => Some(DIGITS),
            // The `regex` crate's escapable metacharacters (`\<`, `\>`… are assertions there).
            b if br"\.+*?()|[]{}^$#&-~".contains(&b) => Some(1u128 << b),
            _ => None,
        }
    }

    /// After `[`: the set, up to and including `]`.
    fn class(&mut self) -> Option<u128> {
        let negated = self.eat(b'^');
        let mut set = 0u128;
        let mut first = true;
        loop {
            let byte = self.peek()?;
            let rest = &self.bytes[self.at..];
            if [&b"&&"[..], b"--", b"~~"]
                .iter()
                .any(|op| rest.starts_with(op))
                || byte == b'#'
                || first && byte == b'-'
            {
                return None; // class operations, a comment, a leading `-`
            }
            self.at += 1;
            let low = match byte {
                b']' if !first => break,
                b'[' => return None, // nested classes
                b'\\' => {
                    let escaped = self.escape()?;
                    if escaped.count_ones() != 1 {
                        set |= escaped; // `\d` cannot start a range
                        first = false;
                        continue;
                    }
                    escaped.trailing_zeros() as u8
                }
                b if b.is_ascii() => b,
                _ => return None,
            };
            first = false;
            let at = self.at;
            if self.eat(b'-') {
                match self.peek() {
                    Some(b']') => {
                        // A trailing `-` is literal.
                        self.at = at;
                    }
                    Some(high) if high.is_ascii() && high != b'\\' && high != b'[' => {
                        self.at += 1;
                        if high < low {
                            return None;
                        }
                        for b in low..=high {
                            set |= 1u128 << b;
                        }
                        continue;
                    }
                    _ => return None,
                }
            }
            set |= 1u128 << low;
        }
        Some(if negated { !set } else { set })
    }

    fn quantified(&mut self, atom: Node) -> Option<Node> {
        let bounds = match self.peek() {
            Some(b'?') => (0, Some(1)),
            Some(b'*') => (0, None),
            Some(b'+') => (1, None),
            Some(b'{') => {
                self.at += 1;
                let bounds = self.bounds()?;
                self.at -= 1; // leave the `}` for the step below
                bounds
            }
            _ => return Some(atom),
        };
        self.at += 1;
        let greedy = !self.eat(b'?');
        if matches!(self.peek(), Some(b'?' | b'*' | b'+' | b'{')) {
            return None; // a repetition of a repetition
        }
        let (min, max) = bounds;
        if max != Some(min) && atom.can_match_empty() {
            return None; // the `regex` crate's empty repetitions differ from backtracking's
        }
        Some(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
            greedy,
        })
    }

    /// After `{`: `n}`, `n,}` or `n,m}`.
    fn bounds(&mut self) -> Option<(u32, Option<u32>)> {
        let min = self.number()?;
        let max = if self.eat(b',') {
            if self.peek() == Some(b'}') {
                None
            } else {
                Some(self.number()?)
            }
        } else {
            Some(min)
        };
        if !self.eat(b'}') || max.is_some_and(|max| max < min) {
            return None;
        }
        Some((min, max))
    }

    fn number(&mut self) -> Option<u32> {
        self.peek()?;
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()?
            .parse()
            .ok()
            .filter(|n| *n <= 1000)
    }
}

struct State<'a> {
    input: &'a [u8],
    groups: Vec<Option<(usize, usize)>>,
}

/// The continuation: what must match after a node, from a position.
type Next<'k> = dyn FnMut(usize, &mut State<'_>) -> bool + 'k;

/// Matches `nodes` from `at`, then `next`; the first success in priority order wins.
fn seq(nodes: &[Node], at: usize, state: &mut State<'_>, next: &mut Next<'_>) -> bool {
    let Some((node, rest)) = nodes.split_first() else {
        return next(at, state);
    };
    match node {
        Node::Set(set) => match state.input.get(at) {
            Some(&b) if b < 128 && set >> b & 1 == 1 => seq(rest, at + 1, state, next),
            _ => false,
        },
        Node::Start => at == 0 && seq(rest, at, state, next),
        Node::End => at == state.input.len() && seq(rest, at, state, next),
        Node::Group {
            alternatives,
            capture,
        } => alternatives.iter().any(|alternative| {
            seq(alternative, at, state, &mut |end, state| {
                let Some(index) = *capture else {
                    return seq(rest, end, state, next);
                };
                let before = state.groups[index].replace((at, end));
                if seq(rest, end, state, next) {
                    return true;
                }
                state.groups[index] = before;
                false
            })
        }),
        Node::Repeat {
            node,
            min,
            max,
            greedy,
        } => repeat(node, (*min, *max, *greedy), 0, rest, at, state, next),
    }
}

/// The `count`-th repetition of `node` onwards, then `rest`, then `next`.
fn repeat(
    node: &Node,
    bounds @ (min, max, greedy): (u32, Option<u32>, bool),
    count: u32,
    rest: &[Node],
    at: usize,
    state: &mut State<'_>,
    next: &mut Next<'_>,
) -> bool {
    if count < min {
        return one_more(node, bounds, count, rest, at, state, next);
    }
    let more = max.is_none_or(|max| count < max);
    // Greedy: one more repetition first, then the rest; lazy: the other way round.
    if greedy {
        if more && one_more(node, bounds, count, rest, at, state, next) {
            return true;
        }
        return seq(rest, at, state, next);
    }
    if seq(rest, at, state, next) {
        return true;
    }
    more && one_more(node, bounds, count, rest, at, state, next)
}

/// One more repetition of `node` from `at`, then the rest of [`repeat`].
fn one_more(
    node: &Node,
    bounds @ (min, _, _): (u32, Option<u32>, bool),
    count: u32,
    rest: &[Node],
    at: usize,
    state: &mut State<'_>,
    next: &mut Next<'_>,
) -> bool {
    seq(std::slice::from_ref(node), at, state, &mut |end, state| {
        // An empty repetition past the minimum adds nothing (and would never end).
        (end != at || count < min) && repeat(node, bounds, count + 1, rest, end, state, next)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn starts(pattern: &str, input: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches_start(input)
    }

    #[test]
    fn matches_at_the_start_only() {
        assert!(starts("[2-9][0-9]{9}|3[0-9]{6}", "6505551234"));
        assert!(starts("[2-9][0-9]{9}", "650555123499")); // a prefix is enough, as for `find`
        assert!(!starts("[2-9][0-9]{9}", "165055512"));
        assert!(!starts("5", "65"));
        assert!(starts("(?:1[0-9]|2)?5", "5"));
        assert!(starts("[^0]", "1"));
        assert!(!starts("[^0-9]", "1"));
        assert!(starts(" 1 \n 2 ", "12"));
        assert!(starts("([457][0-9]{2})$|1", "456") && !starts("([457][0-9]{2})$|1", "4567"));
        assert!(starts("^1", "1") && starts("(?:1|^2)", "2"));
    }

    #[test]
    fn groups_are_those_of_the_first_match_in_priority_order() {
        let p = Pattern::parse("0?(?:(11|2(?:2(?:02?|[13])|3))?15)?").unwrap();
        assert_eq!(p.groups(), 1);
        let m = p.match_start("0111512345678").unwrap();
        assert_eq!(m.end, 5);
        assert_eq!(m.groups, vec![Some((1, 3))]);
        // The group can take "221", but "5…" is not "15": the optional part backs off, the
        // match is the "0" alone and the group did not take part.
        let m = p.match_start("0221512345678").unwrap();
        assert_eq!(
            m,
            Match {
                end: 1,
                groups: vec![None]
            }
        );
        let lazy = Pattern::parse("([0-9]+?)([0-9]*)").unwrap();
        assert_eq!(
            lazy.match_start("1234").unwrap().groups,
            vec![Some((0, 1)), Some((1, 4))]
        );
        let last = Pattern::parse("(?:([0-9]))+").unwrap();
        assert_eq!(last.match_start("123").unwrap().groups, vec![Some((2, 3))]);
    }

    #[test]
    fn syntax_it_does_not_cover_is_refused() {
        for bad in [
            "(?i)1", "(?=1)", "a**", "(?:|1)*", "(1?)?", "\\<", "[--0]", "[0&&1]", "[#]", "[",
            "(1", "1)", "[[0-9]]", "x{2,1}", "\\w", "é",
        ] {
            assert!(Pattern::parse(bad).is_none(), "{bad}");
        }
    }

    /// A deterministic stream of pseudo-random numbers (xorshift).
    pub(in crate::phone) fn random(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Every expression of the metadata is covered and matches at the start of an input as the
    /// `regex` crate does (built as the `phonenumber` crate builds it), groups included: on the
    /// example numbers of the code's regions, their beginnings, and random digits.
    #[test]
    fn every_expression_of_the_metadata_matches_as_the_regex_crate() {
        use crate::phone::metadata::{all_codes, regions_of};
        use phonenumber::metadata::DATABASE;
        let mut next = random(0x9e37_79b9_7f4a_7c15);
        let mut digits = |len: Option<u64>| -> String {
            let len = len.unwrap_or_else(|| 1 + next() % 17);
            (0..len)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect()
        };
        let (mut expressions, mut checked) = (0, 0);
        for code in all_codes() {
            let mut inputs: Vec<String> = Vec::new();
            for meta in DATABASE.by_code(&code).unwrap() {
                let d = meta.descriptors();
                let examples = [
                    d.fixed_line(),
                    d.mobile(),
                    d.toll_free(),
                    d.premium_rate(),
                    d.shared_cost(),
                    d.personal_number(),
                    d.voip(),
                    d.pager(),
                    d.uan(),
                    d.voicemail(),
                ]
                .into_iter()
                .flatten()
                .filter_map(|d| d.example());
                for example in examples {
                    for end in 0..=example.len() {
                        inputs.push(example[..end].to_owned());
                    }
                    for lead in ["0", "1", "00", "011", "8", "15"] {
                        inputs.push(format!("{lead}{example}"));
                    }
                    // The example's first digits, then random ones: deep into the expressions.
                    for keep in [1, 2, 3, 4] {
                        let keep = keep.min(example.len());
                        inputs.push(format!("{}{}", &example[..keep], digits(Some(8))));
                    }
                }
            }
            for _ in 0..20 {
                inputs.push(digits(None));
            }
            for meta in regions_of(code).unwrap().iter() {
                let descriptors = [
                    &meta.general,
                    &meta.fixed_line,
                    &meta.mobile,
                    &meta.toll_free,
                    &meta.premium_rate,
                    &meta.shared_cost,
                    &meta.personal_number,
                    &meta.voip,
                    &meta.pager,
                    &meta.uan,
                    &meta.voicemail,
                ];
                let sources = descriptors
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.national_number.as_deref())
                    .chain(meta.leading_digits.as_deref())
                    .chain(meta.international_prefix.as_deref())
                    .chain(meta.national_prefix_for_parsing.as_deref());
                for source in sources {
                    let ours = Pattern::parse(source)
                        .unwrap_or_else(|| panic!("{source:?} ({:?}) is covered", meta.id));
                    let theirs = regex::RegexBuilder::new(source)
                        .ignore_whitespace(true)
                        .build()
                        .unwrap();
                    assert_eq!(ours.groups(), theirs.captures_len() - 1, "{source:?}");
                    expressions += 1;
                    for input in &inputs {
                        let expected = theirs.captures(input).and_then(|c| {
                            let whole = c.get(0).unwrap();
                            (whole.start() == 0).then(|| Match {
                                end: whole.end(),
                                groups: c
                                    .iter()
                                    .skip(1)
                                    .map(|g| g.map(|m| (m.start(), m.end())))
                                    .collect(),
                            })
                        });
                        assert_eq!(
                            ours.matches_start(input),
                            expected.is_some(),
                            "{source:?} on {input:?}"
                        );
                        assert_eq!(ours.match_start(input), expected, "{source:?} on {input:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(
            expressions > 1_500 && checked > 800_000,
            "{expressions} {checked}"
        );
    }
}
