//! The fuzz targets on stable: every input of `fuzz/corpus/<target>/` (seeds and what long
//! cargo-fuzz runs kept, crashes found included once fixed), then seeded mutations of them.
//! Deterministic and bounded; `FUZZ_REPLAY_SEED` and `FUZZ_REPLAY_CASES` change it.

use std::path::PathBuf;

use faas_api::seeded::Seeded;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

/// One random edit: flip, insert, delete, duplicate a slice, or splice another input in.
fn mutate(rng: &mut Seeded, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    let at = |rng: &mut Seeded, len: usize| if len == 0 { 0 } else { rng.below(len + 1) };
    match rng.range(0, 5) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.range(0, 7);
        }
        1 => {
            let i = at(rng, input.len());
            const INTERESTING: &[u8] = b"\0\n\r :/*-,?#{}[]\"\\%=&|LW0123456789\xff";
            input.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
        }
        2 if !input.is_empty() => {
            let i = rng.below(input.len());
            let n = rng.below(input.len() - i) + 1;
            input.drain(i..i + n.min(8));
        }
        3 if !input.is_empty() => {
            let i = rng.below(input.len());
            let n = (rng.below(input.len() - i) + 1).min(64);
            let slice = input[i..i + n].to_vec();
            let j = at(rng, input.len());
            input.splice(j..j, slice);
        }
        _ => {
            let other = &others[rng.below(others.len())];
            let i = at(rng, input.len());
            let j = at(rng, other.len());
            input.truncate(i);
            input.extend_from_slice(&other[j..]);
        }
    }
}

#[test]
fn every_target_holds_on_its_corpus_and_on_mutations_of_it() {
    let seed = Seeded::seed_from_env("FUZZ_REPLAY_SEED", 0xf022);
    let cases = Seeded::seed_from_env("FUZZ_REPLAY_CASES", 3_000) as usize;
    let mut rng = Seeded::new(seed);
    for (name, target) in faas_fuzz_targets::TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "fuzz/corpus/{name}/ has no seed input");
        for input in &inputs {
            target(input);
        }
        for case in 0..cases {
            let mut input = inputs[rng.below(inputs.len())].clone();
            for _ in 0..rng.range(1, 4) {
                mutate(&mut rng, &mut input, &inputs);
            }
            let outcome = std::panic::catch_unwind(|| target(&input));
            assert!(
                outcome.is_ok(),
                "target {name}, case {case} (FUZZ_REPLAY_SEED={seed}) failed on {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}
