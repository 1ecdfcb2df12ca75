//! Property: whatever bytes are flipped, cut off or appended, recovery either returns exactly a
//! prefix of what was written (reporting the damage whenever records were lost) or refuses to
//! open. It never returns different records, and never loses records without saying so.

mod common;

use common::*;
use petrel_journal::{Durability, Journal, JournalError};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Damage {
    Flip { file: usize, at: u64, xor: u8 },
    Truncate { file: usize, at: u64 },
    Append { file: usize, bytes: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Damage> {
    // Half the positions fall near the start, where the records are.
    let position = prop_oneof![0..12_288u64, 0..SMALL_SEGMENT_BYTES + 64];
    prop_oneof![
        (any::<usize>(), position.clone(), 1..=255u8).prop_map(|(file, at, xor)| Damage::Flip {
            file,
            at,
            xor
        }),
        (any::<usize>(), position).prop_map(|(file, at)| Damage::Truncate { file, at }),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..200))
            .prop_map(|(file, bytes)| Damage::Append { file, bytes }),
    ]
}

fn big_payload(sequence: u64) -> Vec<u8> {
    let len = (sequence * 7_919 % 600) as usize;
    (0..len).map(|i| (sequence as usize * 13 + i) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn random_damage_never_yields_silently_different_records(
        records in 1..400u64,
        batch in 1..40u64,
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(dir.path(), Durability::None);
        let (mut writer, _) = Journal::open(&config).unwrap();
        let mut original = Vec::new();
        for i in 0..records {
            let seq = writer.next_sequence();
            writer.append(seq, seq * 3, &big_payload(seq)).unwrap();
            original.push((seq, seq * 3, big_payload(seq)));
            if (i + 1) % batch == 0 {
                writer.commit().unwrap();
            }
        }
        writer.commit().unwrap();
        drop(writer);

        let files = segment_files(dir.path());
        for damage in &damages {
            match damage {
                Damage::Flip { file, at, xor } => {
                    let path = &files[file % files.len()];
                    let len = std::fs::metadata(path).unwrap().len();
                    if len == 0 { continue; }
                    let at = at % len;
                    let byte = read_at(path, at, 1)[0];
                    patch(path, at, &[byte ^ xor]);
                }
                Damage::Truncate { file, at } => {
                    let path = &files[file % files.len()];
                    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                    let len = file.metadata().unwrap().len();
                    file.set_len(at % (len + 1)).unwrap();
                }
                Damage::Append { file, bytes } => {
                    let path = &files[file % files.len()];
                    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                    std::io::Write::write_all(&mut f, bytes).unwrap();
                }
            }
        }

        match Journal::open(&config) {
            Err(JournalError::Corrupt { .. }) => {} // refused: allowed
            Err(other) => prop_assert!(false, "unexpected error: {other}"),
            Ok((writer, recovery)) => {
                let got = read_all(&recovery);
                prop_assert!(got.len() <= original.len());
                prop_assert_eq!(&got[..], &original[..got.len()]);
                if got.len() < original.len() {
                    prop_assert!(recovery.truncation.is_some(), "{} records lost silently", original.len() - got.len());
                }
                drop(writer);
                // The repair is complete: a second open finds a clean journal with the same records.
                let (_, again) = Journal::open(&config).unwrap();
                prop_assert!(again.truncation.is_none(), "{:?}", again.truncation);
                prop_assert_eq!(read_all(&again), got);
            }
        }
    }
}
