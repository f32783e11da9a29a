# shellcheck shell=bash
# Sourced by scripts/demo and scripts/test: one definition of "the project's virtualenv is usable".

# ensure_venv VENV PYTHON
#   Create VENV with PYTHON; rebuild it (python -m venv --clear) when it was made by another Python
#   version or its interpreter no longer runs (a pyenv or OS upgrade). Refuses to clear a folder that
#   is not a virtualenv.
ensure_venv() {
    local venv="$1" py="$2" want have
    want="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || {
        echo "error: cannot run $py (set PYTHON to a Python >= 3.11)" >&2
        return 2
    }
    if [[ ! -e "$venv" ]]; then
        echo "==> creating $venv (Python $want)"
        "$py" -m venv "$venv"
        return
    fi
    have="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
    [[ "$have" == "$want" ]] && return
    if [[ ! -f "$venv/pyvenv.cfg" ]]; then
        echo "error: $venv exists but is not a virtualenv; move it away" >&2
        return 2
    fi
    echo "==> $venv was made by Python ${have:-that no longer runs}; rebuilding it with Python $want"
    "$py" -m venv --clear "$venv"
}
