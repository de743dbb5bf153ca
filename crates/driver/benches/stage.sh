# Sourced by the benchmark scripts beside it. `stage NAME COMMAND...` runs the command under
# /usr/bin/time and prints "NAME seconds s peak MiB" (or NAME FAILED with the error's last lines).
# Needs $work, a scratch folder.
stage() {
    name=$1
    shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
        echo "$name FAILED: $(tail -n 3 "$work/err")"
        return 0
    }
    set -- $(cat "$work/time")
    printf '%s %s s %d MiB\n' "$name" "$1" $(($2 / 1024))
}
