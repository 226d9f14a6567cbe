//! Testing matches against what [`super::fields`] reads: comparisons answer yes, no, or
//! "cannot tell, because...", so that the evaluator can stop exactly where an unknown could
//! change the path. Sets and maps are scanned element by element (they are small next to the
//! rule count; a lookup is one pass).

use super::{
    Table,
    expr::{Element, Expr, Key, Match, Op, Pattern, Rhs, SetSource},
    fields::{Ctx, Got, V},
};

/// The answer to a comparison.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tri {
    Yes,
    No,
    /// Cannot tell, and why.
    Maybe(String),
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            m @ Tri::Maybe(_) => m,
        }
    }
}

impl Ctx<'_> {
    /// Tests one match.
    pub(crate) fn test(&self, m: &Match, table: &Table) -> Tri {
        match self.value(&m.left) {
            Got::Absent => Tri::No,
            Got::Unknown(why) => Tri::Maybe(why),
            Got::One(v) => test_vals(&[v], m.op, &m.right, table),
            Got::Tuple(vs, why) => match test_vals(&vs, m.op, &m.right, table) {
                Tri::Maybe(w) => Tri::Maybe(why.unwrap_or(w)),
                known => known,
            },
            Got::Either(a, b, why) => {
                let ra = test_vals(&[V::Num(a)], m.op, &m.right, table);
                let rb = test_vals(&[V::Num(b)], m.op, &m.right, table);
                match (ra, rb) {
                    (Tri::Maybe(w), _) | (_, Tri::Maybe(w)) => Tri::Maybe(w),
                    (ra, rb) if ra == rb => ra,
                    _ => Tri::Maybe(why.to_string()),
                }
            }
            Got::Partial { bits, unknown, why } => {
                match test_partial(bits, unknown, m.op, &m.right, table) {
                    Tri::Maybe(_) => Tri::Maybe(why.to_string()),
                    known => known,
                }
            }
        }
    }

    /// The element a verdict map's key finds: `Ok(None)` when none (the rule does not match).
    pub(crate) fn lookup<'t>(
        &self,
        key: &Expr,
        map: &'t SetSource,
        table: &'t Table,
    ) -> Result<Option<&'t Element>, String> {
        let find = |vals: &[V]| first(elements(map, table), |key| key_match(key, vals));
        match self.value(key) {
            Got::Absent => Ok(None),
            Got::Unknown(why) => Err(why),
            Got::One(v) => find(&[v]),
            Got::Tuple(vs, why) => find(&vs).map_err(|w| why.unwrap_or(w)),
            Got::Either(a, b, why) => {
                let ea = find(&[V::Num(a)])?;
                let eb = find(&[V::Num(b)])?;
                match (ea, eb) {
                    (Some(x), Some(y)) if std::ptr::eq(x, y) => Ok(Some(x)),
                    (None, None) => Ok(None),
                    _ => Err(why.to_string()),
                }
            }
            Got::Partial { why, .. } => Err(why.to_string()),
        }
    }
}

/// The elements of an anonymous or named set.
fn elements<'t>(src: &'t SetSource, table: &'t Table) -> &'t [Element] {
    match src {
        SetSource::Anonymous(elems) => elems,
        SetSource::Named { index, .. } => &table.sets[*index].elements,
    }
}

/// The first of `elems` whose key `test` answers yes for: `Ok(None)` when it answers no for
/// all, `Err` with the first reason when none is yes but some cannot tell.
fn first(elems: &[Element], test: impl Fn(&Key) -> Tri) -> Result<Option<&Element>, String> {
    let mut unsure = None;
    for e in elems {
        match test(&e.key) {
            Tri::Yes => return Ok(Some(e)),
            Tri::No => {}
            Tri::Maybe(why) => unsure = unsure.or(Some(why)),
        }
    }
    unsure.map_or(Ok(None), Err)
}

/// Whether `test` answers yes for the key of any of `elems` ([`first`] as a [`Tri`]).
fn any(elems: &[Element], test: impl Fn(&Key) -> Tri) -> Tri {
    match first(elems, test) {
        Ok(Some(_)) => Tri::Yes,
        Ok(None) => Tri::No,
        Err(why) => Tri::Maybe(why),
    }
}

fn key_match(key: &Key, vals: &[V]) -> Tri {
    if key.len() != vals.len() {
        return Tri::Maybe("a concatenation of a different length".into());
    }
    let mut result = Tri::Yes;
    for (p, v) in key.iter().zip(vals) {
        match pattern_match(p, *v) {
            Tri::No => return Tri::No,
            Tri::Maybe(why) => result = Tri::Maybe(why),
            Tri::Yes => {}
        }
    }
    result
}

fn pattern_match(p: &Pattern, v: V) -> Tri {
    match (p, v) {
        (Pattern::Range { lo, hi }, V::Num(n)) => Tri::from_bool(*lo <= n && n <= *hi),
        (Pattern::Name(name), V::Name(s)) => Tri::from_bool(name == s),
        (Pattern::NamePrefix(prefix), V::Name(s)) => Tri::from_bool(s.starts_with(prefix.as_str())),
        (Pattern::Unresolved(why), _) => Tri::Maybe(why.clone()),
        (_, V::Unknown) => Tri::Maybe(String::new()),
        (Pattern::Range { lo, .. }, V::Name(_)) => {
            Tri::Maybe(format!("interface {lo} is listed by index, not by name"))
        }
        (Pattern::Name(n) | Pattern::NamePrefix(n), V::Num(_)) => {
            Tri::Maybe(format!("cannot compare a number with the name {n:?}"))
        }
    }
}

fn contains(rhs: &Rhs, vals: &[V], table: &Table) -> Tri {
    match rhs {
        Rhs::Value(key) => key_match(key, vals),
        Rhs::Set(src) => any(elements(src, table), |key| key_match(key, vals)),
    }
}

/// The single exact number of a one-component value.
fn exact(rhs: &Rhs) -> Result<u128, Tri> {
    match rhs {
        Rhs::Value(key) => match key.as_slice() {
            [Pattern::Range { lo, hi }] if lo == hi => Ok(*lo),
            [Pattern::Unresolved(why)] => Err(Tri::Maybe(why.clone())),
            _ => Err(Tri::Maybe(
                "an ordering comparison with a non-number".into(),
            )),
        },
        Rhs::Set(_) => Err(Tri::Maybe("an ordering comparison with a set".into())),
    }
}

fn test_vals(vals: &[V], op: Op, rhs: &Rhs, table: &Table) -> Tri {
    match op {
        Op::Eq => contains(rhs, vals, table),
        Op::Ne => contains(rhs, vals, table).not(),
        Op::AnyBit if matches!(rhs, Rhs::Set(_)) => contains(rhs, vals, table),
        Op::NoBit => test_vals(vals, Op::AnyBit, rhs, table).not(),
        _ => {
            let (c, n) = match (exact(rhs), vals) {
                (Ok(c), [V::Num(n)]) => (c, *n),
                (Err(t), _) => return t,
                _ => return Tri::Maybe("an ordering comparison of a name".into()),
            };
            Tri::from_bool(match op {
                Op::AnyBit => n & c != 0,
                Op::Lt => n < c,
                Op::Gt => n > c,
                Op::Le => n <= c,
                Op::Ge => n >= c,
                Op::Eq | Op::Ne | Op::NoBit => unreachable!("handled above"),
            })
        }
    }
}

/// Tests against partly known bits; answers only when the known bits decide.
fn test_partial(bits: u128, unknown: u128, op: Op, rhs: &Rhs, table: &Table) -> Tri {
    let known = !unknown;
    let eq = |key: &Key| match key.as_slice() {
        [Pattern::Range { lo, hi }] if lo == hi && (bits ^ lo) & known != 0 => Tri::No,
        _ => Tri::Maybe(String::new()),
    };
    match op {
        Op::Eq | Op::Ne => {
            let r = match rhs {
                Rhs::Value(key) => eq(key),
                Rhs::Set(src) => any(elements(src, table), eq),
            };
            if op == Op::Ne { r.not() } else { r }
        }
        Op::AnyBit => match exact(rhs) {
            Ok(m) if bits & m & known != 0 => Tri::Yes,
            Ok(m) if m & unknown == 0 => Tri::No,
            _ => Tri::Maybe(String::new()),
        },
        Op::NoBit => test_partial(bits, unknown, Op::AnyBit, rhs, table).not(),
        _ => Tri::Maybe(String::new()),
    }
}
