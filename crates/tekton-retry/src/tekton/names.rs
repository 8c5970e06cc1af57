//! Names Tekton derives for the objects it creates: knative's `kmeta.ChildName`
//! (knative.dev/pkg kmeta/names.go), used for child TaskRuns (`<run>-<task>`, matrix
//! `<run>-<task>-<i>`; pipelinerunresolution.go `getNewRunNames`) and their pods (`<taskrun>-pod`,
//! `-pod-retry<N>`; pkg/pod/pod.go). A name that would exceed 63 characters keeps a prefix of the
//! parent, then the md5 of the parent in hex, then the suffix — so a long TaskRun's pod name does
//! not start with the TaskRun's name.

const LONGEST: usize = 63;
const MD5_HEX_LEN: usize = 32;
const HEAD: usize = LONGEST - MD5_HEX_LEN;

/// `kmeta.ChildName(parent, suffix)`.
///
/// Matrix names (`getNewRunNames`): `child_name(run, "-<task>-<i>")`, and when hashing cut the
/// index off, `child_name(run, "-<task>")` truncated to leave room for `-<i>` — see
/// [`matrix_run_name`].
pub fn child_name(parent: &str, suffix: &str) -> String {
    if parent.len() <= LONGEST.saturating_sub(suffix.len()) {
        return format!("{parent}{suffix}");
    }
    if HEAD <= suffix.len() {
        // The suffix alone is too long: hash parent and suffix together, pad with the suffix.
        let mut ret = format!(
            "{}{}",
            prefix(parent, HEAD),
            md5_hex(format!("{parent}{suffix}").as_bytes())
        );
        if ret.len() < LONGEST {
            ret.push_str(prefix(suffix, LONGEST - ret.len()));
        }
        while ret.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
            ret.pop();
        }
        return ret;
    }
    format!(
        "{}{}{suffix}",
        prefix(parent, HEAD - suffix.len()),
        md5_hex(parent.as_bytes())
    )
}

/// The name of combination `i` of `n` of a matrix task (pipelinerunresolution.go `getNewRunNames`).
pub fn matrix_run_name(run: &str, task: &str, i: usize, n: usize) -> String {
    let name = child_name(run, &format!("-{task}-{i}"));
    if name.ends_with(&format!("-{i}")) {
        return name;
    }
    let longest = LONGEST.saturating_sub(format!("-{n}").len());
    format!(
        "{}-{i}",
        prefix(&child_name(run, &format!("-{task}")), longest)
    )
}

/// The first `n` bytes of `s` (Kubernetes names are ASCII), or all of it.
fn prefix(s: &str, n: usize) -> &str {
    s.get(..n).unwrap_or(s)
}

/// MD5 (RFC 1321) of `data` as 32 lowercase hex digits. Only to derive names as Tekton does; not
/// for anything that needs a secure hash.
pub fn md5_hex(data: &[u8]) -> String {
    const SHIFTS: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    let k: Vec<u32> = (0..64)
        .map(|i| ((f64::from(i + 1)).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0): (u32, u32, u32, u32) =
        (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476);
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(SHIFTS[(i / 16) * 4 + i % 4]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_rfc_1321_test_suite() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(b"message digest"),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn child_names_are_hashed_only_when_too_long() {
        assert_eq!(child_name("demo-run-b", "-pod"), "demo-run-b-pod");
        let long = "a".repeat(60);
        let pod = child_name(&long, "-pod");
        assert_eq!(pod.len(), 63);
        assert_eq!(
            pod,
            format!("{}{}-pod", "a".repeat(27), md5_hex(long.as_bytes()))
        );
        let retry = child_name(&long, "-pod-retry1");
        assert_eq!(
            retry,
            format!("{}{}-pod-retry1", "a".repeat(20), md5_hex(long.as_bytes()))
        );
        // Cross-checked with Python's hashlib for a 60-character TaskRun name.
        let tr = "nightly-release-build-for-the-payments-service-eu-west-1-a-b";
        assert_eq!(
            child_name(tr, "-pod"),
            "nightly-release-build-for-t63ae731b6ccd2beb9b3b84896bb0eec2-pod"
        );
        // Exactly 59 characters still fit with "-pod".
        let fits = "b".repeat(59);
        assert_eq!(child_name(&fits, "-pod"), format!("{fits}-pod"));
    }
}
