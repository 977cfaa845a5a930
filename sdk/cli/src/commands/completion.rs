//! `faas completion SHELL`: the shell completion script clap generates from the command
//! line, plus, for bash, zsh and fish, completion of function names where a command takes
//! one (`invoke`, `describe`, `run`, `delete`, `logs`, `schedules`). The names come
//! from `faas list -q` at the moment of completion, from whichever target `faas list` would
//! use, so a script installed once stays current; when nothing answers, nothing is offered.
//!
//! Static scripts rather than clap's dynamic completion: the dynamic engine is still an
//! unstable feature of `clap_complete`, and an installed script must keep working across
//! upgrades of the CLI.

use clap_complete::Shell;

use crate::args::Cli;

/// The commands whose first positional argument is an existing function's name.
/// (`runs` too, but its own subcommands come first there.)
const TAKE_A_FUNCTION: [&str; 7] = [
    "invoke",
    "describe",
    "run",
    "delete",
    "rm",
    "logs",
    "schedules",
];

/// Prints the script for `shell`.
pub fn print(shell: Shell) -> anyhow::Result<()> {
    crate::stdout::write_bytes(script(shell).as_bytes())
}

/// The script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut generated = Vec::new();
    clap_complete::generate(shell, &mut command, "faas", &mut generated);
    let generated = String::from_utf8_lossy(&generated).into_owned();
    match shell {
        Shell::Bash => format!("{generated}{}", bash()),
        Shell::Zsh => zsh(&generated),
        Shell::Fish => format!("{generated}{}", fish()),
        _ => generated,
    }
}

/// A wrapper around clap's `_faas` that offers function names for the first positional
/// argument of the commands that take one, and registers itself in its place.
fn bash() -> String {
    format!(
        r#"
# Function names (from `faas list -q`) where a command takes one; everything else as above.
_faas_functions() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" sub="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            {commands})
                if [[ -z "$sub" ]]; then sub="${{COMP_WORDS[i]}}"; continue; fi ;;
        esac
        # Past the command, any word that is not a flag is the name already given.
        if [[ -n "$sub" && "${{COMP_WORDS[i]}}" != -* ]]; then sub=""; break; fi
    done
    case "$prev" in
        {value_flags}) sub="" ;;
    esac
    if [[ -n "$sub" && "$cur" != -* ]]; then
        COMPREPLY=( $(compgen -W "$(faas list -q 2>/dev/null)" -- "$cur") )
        return 0
    fi
    _faas "$@"
}}
if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _faas_functions -o nosort -o bashdefault -o default faas
else
    complete -F _faas_functions -o bashdefault -o default faas
fi
"#,
        commands = TAKE_A_FUNCTION.join("|"),
        value_flags = VALUE_FLAGS.join("|"),
    )
}

/// Flags of those commands that take a value: the word after one is not a function name.
const VALUE_FLAGS: [&str; 20] = [
    "-d",
    "--data",
    "-H",
    "--header",
    "-X",
    "--method",
    "--path",
    "-o",
    "--output",
    "--schedule",
    "--since",
    "--tail",
    "--phase",
    "--limit",
    "--tz",
    "--cron",
    "-c",
    "--gateway",
    "--context",
    "--namespace",
];

/// clap's script with the function-name arguments of those commands completed by
/// `_faas_function_names` instead of `_default`.
fn zsh(generated: &str) -> String {
    let helper = r#"
# Function names (from `faas list -q`) where a command takes one.
_faas_function_names() {
    local -a names
    names=(${(f)"$(faas list -q 2>/dev/null)"})
    _describe 'function' names
}
"#;
    let mut out = String::with_capacity(generated.len() + helper.len());
    // Which subcommand's `_arguments` the lines belong to: a `(NAME)` case label.
    let mut command = String::new();
    for (i, line) in generated.lines().enumerate() {
        if let Some(label) = line
            .strip_prefix('(')
            .and_then(|rest| rest.strip_suffix(')'))
        {
            command = label.to_owned();
        }
        let names_a_function = TAKE_A_FUNCTION.contains(&command.as_str())
            && (line.starts_with("':name") || line.starts_with("'::name"));
        match line.strip_suffix(":_default' \\") {
            Some(spec) if names_a_function => {
                out.push_str(spec);
                out.push_str(":_faas_function_names' \\");
            }
            _ => out.push_str(line),
        }
        out.push('\n');
        // After `#compdef faas`: defined before `_faas` can run.
        if i == 0 {
            out.push_str(helper);
        }
    }
    out
}

/// Function names for the first positional argument of those commands.
fn fish() -> String {
    let mut out =
        String::from("\n# Function names (from `faas list -q`) where a command takes one.\n");
    for command in TAKE_A_FUNCTION {
        out.push_str(&format!(
            "complete -c faas -n \"__fish_faas_using_subcommand {command}\" -f -a \"(faas list -q 2>/dev/null)\" -d Function\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zsh_completes_function_names_for_the_commands_that_take_one() {
        let script = script(Shell::Zsh);
        assert!(script.starts_with("#compdef faas\n\n# Function names"));
        let specs: Vec<&str> = script
            .lines()
            .filter(|l| l.contains(":_faas_function_names'"))
            .collect();
        // invoke, describe, run, delete, logs, schedules (rm is an alias, no case).
        assert_eq!(specs.len(), 6, "{specs:#?}");
        // `new NAME` and `deploy NAME` name functions that need not exist yet.
        assert!(script.contains(":name -- Function name (also the folder created):_default'"));
    }

    #[test]
    fn bash_and_fish_scripts_register_the_name_completion() {
        let bash = script(Shell::Bash);
        assert!(bash.contains("complete -F _faas_functions"), "{bash}");
        assert!(bash.contains("_faas \"$@\""));
        let fish = script(Shell::Fish);
        assert!(fish.contains(
            "complete -c faas -n \"__fish_faas_using_subcommand invoke\" -f -a \"(faas list -q 2>/dev/null)\""
        ));
    }
}
