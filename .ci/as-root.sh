# Sourced by the CI scripts before anything else: re-run the sourcing script as root through
# sudo when it is not root already, or stop with a message naming it.
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        exec sudo -E bash "$0" "$@"
    fi
    echo "$(basename "$0"): needs root (or sudo)" >&2
    exit 1
fi
