//! `.dockerignore` with Docker's own semantics.
//!
//! This is a port of what the docker CLI does when it sends a build context with the classic
//! builder: `ignorefile.ReadAll` (line handling), `patternmatcher` (pattern cleaning, the
//! translation of each pattern to a regular expression, and `MatchesUsingParentResults`, where
//! the last matching line wins and `!` lines re-include), and the walk rule of
//! `archive.TarWithOptions` (an excluded directory is still entered when a `!` pattern starts
//! with it). The regular expressions run on the `regex` crate, whose syntax is the RE2 syntax
//! Go uses. gitignore semantics differ (`*` vs `**`, anchoring, directory-only `/`), so no
//! gitignore crate is used. The integration tests compare the result with `docker build`.

use regex::Regex;
use std::fmt;

/// A pattern line Docker would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pattern `{}`: {}", self.pattern, self.reason)
    }
}

/// The lines of a `.dockerignore`, as `ignorefile.ReadAll` returns them: comments and blank
/// lines dropped, whitespace trimmed, each pattern cleaned (`filepath.Clean`), a leading `/`
/// dropped, `!` kept in front.
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let mut line = line.strip_suffix('\r').unwrap_or(line);
        if i == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = go_clean(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        if invert {
            p.insert(0, '!');
        }
        out.push(p);
    }
    out
}

pub use e2e_core::path::clean as go_clean;

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regexp(Regex),
}

#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    dirs: usize,
    kind: Kind,
}

impl Pattern {
    /// The cleaned pattern, without `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }
    /// Whether this is a `!` (re-include) line.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                suffix.starts_with('/') && path == &suffix[1..]
            }
            Kind::Regexp(re) => re.is_match(path),
        }
    }
}

/// Per-pattern results for a directory, handed to its children (`patternmatcher.MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// A compiled `.dockerignore` (`patternmatcher.PatternMatcher`).
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl Matcher {
    /// Compiles patterns as `patternmatcher.New` does, refusing the ones Docker refuses.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut m = Matcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = go_clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError {
                        pattern: p.clone(),
                        reason: "illegal exclusion pattern: \"!\"".into(),
                    });
                }
                exclusion = true;
                m.exclusions = true;
                p = rest.to_string();
            }
            check_go_match_syntax(&p).map_err(|reason| PatternError {
                pattern: p.clone(),
                reason,
            })?;
            let kind = compile(&p).map_err(|reason| PatternError {
                pattern: p.clone(),
                reason,
            })?;
            m.patterns.push(Pattern {
                dirs: p.split('/').count(),
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(m)
    }

    /// Parses a `.dockerignore` file's text.
    pub fn from_ignore_file(text: &str) -> Result<Self, PatternError> {
        Self::new(&read_ignore_file(text))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any `!` pattern exists.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// `MatchesUsingParentResults`: whether `file` (relative, `/`-separated, clean) is
    /// excluded, given its parent directory's results (`None` at the top or when unknown).
    pub fn matches_using_parent(
        &self,
        file: &str,
        parent: Option<&MatchInfo>,
    ) -> (bool, MatchInfo) {
        let parent_matched = parent.map(|p| p.parent_matched.as_slice()).unwrap_or(&[]);
        let parent_matched = if parent_matched.len() == self.patterns.len() {
            parent_matched
        } else {
            &[]
        };
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut m = parent_matched.get(i).copied().unwrap_or(false);
            if !m {
                if pattern.exclusion != matched {
                    continue;
                }
                m = pattern.matches(file);
                if !m && parent_matched.is_empty() {
                    if let Some((parent_path, _)) = file.rsplit_once('/') {
                        let dirs: Vec<&str> = parent_path.split('/').collect();
                        for n in 1..=dirs.len() {
                            if pattern.matches(&dirs[..n].join("/")) {
                                m = true;
                                break;
                            }
                        }
                    }
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }

    /// `MatchesOrParentMatches`: whether `file` or one of its parents is excluded.
    pub fn matches_or_parent(&self, file: &str) -> bool {
        self.matches_using_parent(file, None).0
    }

    /// The deprecated `Matches` (only the parent at the pattern's depth is checked), which the
    /// docker CLI still uses to decide whether the Dockerfile and `.dockerignore` must be
    /// re-included (`TrimBuildFilesFromExcludes`).
    pub fn matches_legacy(&self, file: &str) -> bool {
        let parent_dirs: Vec<&str> = match file.rsplit_once('/') {
            Some((p, _)) => p.split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(file);
            if !m && !parent_dirs.is_empty() && pattern.dirs <= parent_dirs.len() {
                m = pattern.matches(&parent_dirs[..pattern.dirs].join("/"));
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether an excluded directory must still be entered because a `!` pattern starts with
    /// it (`strings.HasPrefix(pattern+"/", dir+"/")`, exactly as the docker CLI's walk does).
    pub fn must_enter_excluded_dir(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.cleaned).starts_with(&dir_slash))
    }
}

/// `patternmatcher`'s `shouldEscape`: regexp metacharacters that mean nothing in a pattern.
fn should_escape(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$')
}

/// `Pattern.compile`: the pattern as an exact, prefix, suffix or regexp match.
fn compile(pattern: &str) -> Result<Kind, String> {
    let mut re = String::from("^");
    let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regexp
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let mut i = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        if ch == '*' {
            if chars.get(pos) == Some(&'*') {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if kind == 0 {
                        kind = 1;
                    } else {
                        re.push_str(".*");
                        kind = 3;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = 3;
                }
                if i == 0 {
                    kind = 2;
                }
            } else {
                re.push_str("[^/]*");
                kind = 3;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = 3;
        } else if should_escape(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            if pos < chars.len() {
                re.push('\\');
                re.push(chars[pos]);
                pos += 1;
                kind = 3;
            } else {
                re.push('\\');
            }
        } else if ch == '[' {
            re.push('[');
            kind = 3;
        } else if ch == ']' {
            re.push(']');
            kind = 3;
        } else {
            re.push(ch);
        }
        i += 1;
    }
    Ok(match kind {
        0 => Kind::Exact,
        1 => Kind::Prefix,
        2 => Kind::Suffix,
        _ => {
            re.push('$');
            Kind::Regexp(
                Regex::new(&go_regexp_to_rust(&re))
                    .map_err(|e| format!("not a valid pattern ({e})"))?,
            )
        }
    })
}

/// Rewrites a Go (RE2) regular expression for the `regex` crate. The syntax is the same
/// except inside bracket expressions, where the `regex` crate reads `[` as a nested class and
/// `&&`, `--`, `~~` as set operators, while Go reads them literally.
fn go_regexp_to_rust(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c == '\\' {
            out.push(c);
            if i < chars.len() {
                out.push(chars[i]);
                i += 1;
            }
            continue;
        }
        if !in_class {
            out.push(c);
            if c == '[' {
                in_class = true;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            continue;
        }
        match c {
            ']' => {
                in_class = false;
                out.push(']');
            }
            '[' if chars.get(i) == Some(&':') => {
                // A POSIX class `[:alpha:]`: copied up to its `:]`.
                out.push('[');
                while i < chars.len() {
                    out.push(chars[i]);
                    i += 1;
                    if chars[i - 1] == ']' {
                        break;
                    }
                }
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '-' if chars.get(i) == Some(&'-') => {
                out.push_str("\\-");
            }
            c => out.push(c),
        }
    }
    out
}

/// The syntax errors Go's `filepath.Match` reports for a pattern (`ErrBadPattern`): an
/// unterminated `[`, a class starting with `-` or `]`, a trailing `\`.
fn check_go_match_syntax(pattern: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("syntax error in pattern ({why})"));
    let b = pattern.as_bytes();
    let mut rest = b;
    while !rest.is_empty() {
        // scanChunk
        while rest.first() == Some(&b'*') {
            rest = &rest[1..];
        }
        let mut in_range = false;
        let mut i = 0;
        while i < rest.len() {
            match rest[i] {
                b'\\' if i + 1 < rest.len() => i += 1,
                b'[' => in_range = true,
                b']' => in_range = false,
                b'*' if !in_range => break,
                _ => {}
            }
            i += 1;
        }
        let mut chunk = &rest[..i];
        rest = &rest[i..];
        // matchChunk with a failed match: only the syntax is checked.
        while !chunk.is_empty() {
            match chunk[0] {
                b'[' => {
                    chunk = &chunk[1..];
                    if chunk.first() == Some(&b'^') {
                        chunk = &chunk[1..];
                    }
                    let mut nrange = 0;
                    loop {
                        if chunk.first() == Some(&b']') && nrange > 0 {
                            chunk = &chunk[1..];
                            break;
                        }
                        chunk = match get_esc(chunk) {
                            Some(c) => c,
                            None => return bad("bad character class"),
                        };
                        if chunk[0] == b'-' {
                            chunk = match get_esc(&chunk[1..]) {
                                Some(c) => c,
                                None => return bad("bad character range"),
                            };
                        }
                        nrange += 1;
                    }
                }
                b'\\' => {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return bad("trailing backslash");
                    }
                    chunk = &chunk[1..];
                }
                _ => chunk = &chunk[1..],
            }
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) class character; `None` for a syntax error. The
/// returned rest is never empty (an unterminated class is an error).
fn get_esc(chunk: &[u8]) -> Option<&[u8]> {
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return None;
    }
    let mut chunk = chunk;
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return None;
        }
    }
    // One UTF-8 character.
    let len = match chunk[0] {
        b if b < 0x80 => 1,
        b if b >= 0xF0 => 4,
        b if b >= 0xE0 => 3,
        _ => 2,
    }
    .min(chunk.len());
    let rest = &chunk[len..];
    if rest.is_empty() {
        return None;
    }
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(lines: &[&str]) -> Matcher {
        Matcher::new(lines).unwrap()
    }

    #[test]
    fn reads_ignore_file_like_docker() {
        let text = "\u{feff}# comment\n  \n/foo/\n ! ./bar/../baz \n #not a comment\nx\r\n";
        assert_eq!(
            read_ignore_file(text),
            vec!["foo", "!baz", "#not a comment", "x"]
        );
    }

    #[test]
    fn star_stays_in_one_directory_double_star_crosses() {
        let pm = m(&["*.log", "**/*.tmp", "docs/**"]);
        assert!(pm.matches_or_parent("a.log"));
        assert!(!pm.matches_or_parent("dir/a.log"));
        assert!(pm.matches_or_parent("x.tmp"));
        assert!(pm.matches_or_parent("a/b/c/x.tmp"));
        assert!(pm.matches_or_parent("docs/a/b"));
        assert!(!pm.matches_or_parent("docs"));
    }

    #[test]
    fn directory_pattern_excludes_contents_and_last_match_wins() {
        let pm = m(&[
            "node_modules",
            "!node_modules/keep.js",
            "*.md",
            "!README.md",
        ]);
        assert!(pm.matches_or_parent("node_modules/x/y.js"));
        assert!(!pm.matches_or_parent("node_modules/keep.js"));
        assert!(pm.matches_or_parent("CHANGES.md"));
        assert!(!pm.matches_or_parent("README.md"));
        assert!(pm.must_enter_excluded_dir("node_modules"));
        assert!(!pm.must_enter_excluded_dir("other"));
    }

    #[test]
    fn suffix_and_prefix_fast_paths() {
        let pm = m(&["**/foo"]);
        assert!(pm.matches_or_parent("foo"));
        assert!(pm.matches_or_parent("a/b/foo"));
        assert!(!pm.matches_or_parent("a/xfoo"));
        let pm = m(&["**"]);
        assert!(pm.matches_or_parent("anything/at/all"));
        let pm = m(&["**foo"]);
        assert!(pm.matches_or_parent("a/xfoo"));
    }

    #[test]
    fn classes_and_escapes() {
        let pm = m(&["[a-c]?.txt", "[^x]y", "\\*lit"]);
        assert!(pm.matches_or_parent("b1.txt"));
        assert!(!pm.matches_or_parent("d1.txt"));
        assert!(pm.matches_or_parent("zy"));
        assert!(!pm.matches_or_parent("xy"));
        assert!(pm.matches_or_parent("*lit"));
        assert!(!pm.matches_or_parent("alit"));
        // `!` inside a class is a member, as in Go.
        assert!(m(&["[!a]"]).matches_or_parent("!"));
        // Regexp metacharacters are literal.
        assert!(m(&["a+b(c)|{d}$"]).matches_or_parent("a+b(c)|{d}$"));
        assert!(!m(&["a.b"]).matches_or_parent("axb"));
    }

    #[test]
    fn refuses_what_docker_refuses() {
        assert!(Matcher::new(&["!"]).is_err());
        assert!(Matcher::new(&["[abc"]).is_err());
        assert!(Matcher::new(&["[]a]"]).is_err());
        assert!(Matcher::new(&["a\\"]).is_err());
        assert!(Matcher::new(&["[-a]"]).is_err());
        assert!(Matcher::new(&["ok/*.go"]).is_ok());
    }

    #[test]
    fn legacy_matches_checks_the_parent_at_pattern_depth() {
        let pm = m(&["docker"]);
        assert!(pm.matches_legacy("docker/app.Dockerfile"));
        let pm = m(&["a/b"]);
        assert!(pm.matches_legacy("a/b/c/Dockerfile"));
        assert!(!m(&["b"]).matches_legacy("a/b/Dockerfile"));
    }

    #[test]
    fn parent_results_are_reused() {
        let pm = m(&["dir", "!dir/keep"]);
        let (skip, info) = pm.matches_using_parent("dir", None);
        assert!(skip);
        assert!(pm.matches_using_parent("dir/other", Some(&info)).0);
        assert!(!pm.matches_using_parent("dir/keep", Some(&info)).0);
    }
}
