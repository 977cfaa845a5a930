//! `faas_api::filter` on patterns nobody wrote by hand: random pattern trees built from the
//! grammar's own keys, operators and operands (with wrong types and arities mixed in), some
//! then cut or corrupted, matched against random records. Parsing and matching never panic,
//! and a pattern either parses or is refused with a message. Seeded: a failure prints the
//! seed and the pattern.

use faas_api::filter::Pattern;
use faas_api::seeded::Seeded;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &["body", "type", "n", "tags", "$or", ""];
const OPERATORS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "wildcard",
];

fn scalar(rng: &mut Seeded) -> Value {
    match rng.below(7) {
        0 => json!("order"),
        1 => json!(""),
        2 => json!(rng.range(0, 200)),
        3 => json!(-2.5),
        4 => json!(rng.chance(50)),
        5 => Value::Null,
        _ => json!(["x", 1]),
    }
}

fn rule(rng: &mut Seeded) -> Value {
    if rng.chance(40) {
        return scalar(rng);
    }
    let operator: &str = rng.pick(OPERATORS);
    let operand = match (operator, rng.below(3)) {
        ("numeric", 0) => json!([">", rng.range(0, 50), "<=", rng.range(0, 100)]),
        ("numeric", 1) => json!(["=", rng.range(0, 10)]),
        ("anything-but", 0) => json!({"prefix": "ord"}),
        ("anything-but", 1) => json!(["a", 5]),
        ("exists", 0) => json!(rng.chance(50)),
        _ => scalar(rng),
    };
    let mut map = Map::new();
    map.insert(operator.to_owned(), operand);
    if rng.chance(10) {
        map.insert("suffix".to_owned(), json!("x"));
    }
    Value::Object(map)
}

fn object(rng: &mut Seeded, depth: u32) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.range(0, 3) {
        let key: &str = rng.pick(KEYS);
        let value = if key == "$or" {
            Value::Array(
                (0..rng.range(0, 3))
                    .map(|_| object(rng, depth + 1))
                    .collect(),
            )
        } else if depth < 3 && rng.chance(30) {
            object(rng, depth + 1)
        } else if rng.chance(90) {
            Value::Array((0..rng.range(0, 3)).map(|_| rule(rng)).collect())
        } else {
            scalar(rng)
        };
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

fn records() -> Vec<Value> {
    vec![
        json!({}),
        json!({"body": "plain text"}),
        json!({"body": {"type": "order", "n": 5}}),
        json!({"body": {"type": ["order", "refund"], "n": [1, 2.5], "tags": []}}),
        json!({"body": {"type": null, "n": "5"}}),
        json!({"type": "order", "n": -5, "body": [{"type": "x"}], "": 0}),
    ]
}

#[test]
fn random_patterns_never_panic_and_parse_or_are_refused_saying_why() {
    let seed = Seeded::seed_from_env("FILTER_GARBAGE_SEED", 0xf117e2);
    let mut rng = Seeded::new(seed);
    let records = records();
    let (mut parsed, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let mut text = object(&mut rng, 0).to_string();
        // Now and then cut short, or a byte replaced: not JSON any more, or other JSON.
        if rng.chance(15) {
            let cut = rng.below(text.len() + 1);
            text.truncate(text.floor_char_boundary(cut));
        } else if rng.chance(15) && !text.is_empty() {
            let at = text.floor_char_boundary(rng.below(text.len()));
            let by: &str = rng.pick(&["]", "{", "\"", ",", "0"]);
            text.replace_range(at..text.ceil_char_boundary(at + 1), by);
        }
        match Pattern::parse(&text) {
            Ok(pattern) => {
                parsed += 1;
                for record in &records {
                    let _ = pattern.matches(record);
                }
            }
            Err(error) => {
                refused += 1;
                assert!(
                    !error.to_string().is_empty(),
                    "seed {seed:#x}: {text} refused without a word"
                );
            }
        }
    }
    // Both sides ran on enough cases to mean something.
    assert!(
        parsed > 500 && refused > 500,
        "seed {seed:#x}: {parsed} parsed, {refused} refused"
    );
}
