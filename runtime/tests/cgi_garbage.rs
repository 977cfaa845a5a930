//! The CGI response parser on output a hostile guest could write: valid responses mutated
//! at random (bytes inserted, dropped, flipped; lines doubled; control bytes, invalid UTF-8,
//! huge header sections). It never panics; what it accepts has a status in 100-599 and a body
//! that is the end of what the guest wrote. Seeded: a failure prints the seed and the input.

use faas_api::seeded::Seeded;
use faas_runtime::cgi::parse_response;

const VALID: &[&[u8]] = &[
    b"Content-Type: text/plain\r\nStatus: 201 Created\r\nX-A: 1\r\n\r\nhello\n",
    b"Location: /elsewhere\n\n",
    b"Content-Type: text/plain\n\n",
    b"Status: 404\nContent-Type: application/json\n\n{\"error\":\"nope\"}",
    b"content-type: text/html\r\n\r\n<p>\r\n\r\n</p>",
];

const NOISE: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\r",
    b":",
    b" ",
    b"\0",
    b"\xff\xfe",
    b"Status: ",
    b"999",
    b"1000",
    b"Status: 20",
    b"Content-Type",
    b"\x7f",
    b"\t",
    b"X-Long: ",
];

fn mutate(rng: &mut Seeded, input: &mut Vec<u8>) {
    match rng.below(6) {
        0 => {
            let at = rng.below(input.len() + 1);
            let noise = rng.pick(NOISE);
            input.splice(at..at, noise.iter().copied());
        }
        1 if !input.is_empty() => {
            let at = rng.below(input.len());
            input.remove(at);
        }
        2 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] ^= 1 << rng.below(8);
        }
        3 => {
            // A line doubled many times: the header-count and size limits.
            let line = b"X-Dup: 1\n".repeat(rng.below(200));
            input.splice(0..0, line);
        }
        4 => {
            let at = rng.below(input.len() + 1);
            input.splice(at..at, std::iter::repeat_n(b'a', rng.below(70_000)));
        }
        _ => input.truncate(rng.below(input.len() + 1)),
    }
}

#[test]
fn mutated_cgi_output_never_panics_and_what_parses_is_sound() {
    let seed = Seeded::seed_from_env("CGI_GARBAGE_SEED", 0x0c61);
    let mut rng = Seeded::new(seed);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..20_000 {
        let mut input = rng.pick(VALID).to_vec();
        for _ in 0..rng.range(1, 4) {
            mutate(&mut rng, &mut input);
        }
        let shown = || String::from_utf8_lossy(&input[..input.len().min(200)]).into_owned();
        match parse_response(&input) {
            Ok(response) => {
                accepted += 1;
                let status = response.status().as_u16();
                assert!(
                    (100..=599).contains(&status),
                    "case {case} (seed {seed}): status {status} from {:?}",
                    shown()
                );
                assert!(
                    input.ends_with(response.body()),
                    "case {case} (seed {seed}): the body is not the end of {:?}",
                    shown()
                );
            }
            Err(why) => {
                refused += 1;
                assert!(!why.to_string().is_empty());
            }
        }
    }
    // Both sides exercised.
    assert!(
        accepted > 1_000 && refused > 1_000,
        "{accepted} accepted, {refused} refused"
    );
}
