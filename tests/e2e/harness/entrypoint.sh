#!/usr/bin/env bash
# The apache/airflow image's /entrypoint (scripts/docker/entrypoint_prod.sh), the parts that
# matter for the harness, in the same order. A container without `command` runs this with its
# args, exactly as `ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]` would.
# Left out: check_uid_gid/create_system_user_if_missing (no passwd changes here), the LD_PRELOAD
# work-around, the _AIRFLOW_DB_MIGRATE/_AIRFLOW_WWW_USER_CREATE/_PIP_ADDITIONAL_REQUIREMENTS
# shortcuts (the harness fails if a container sets them: see cluster.py).
AIRFLOW_COMMAND="${1:-}"

set -euo pipefail

function run_check_with_retries {
    local cmd
    cmd="${1}"
    local countdown
    countdown="${CONNECTION_CHECK_MAX_COUNT}"
    while true
    do
        set +e
        local last_check_result
        local res
        last_check_result=$(eval "${cmd} 2>&1")
        res=$?
        set -e
        if [[ ${res} == 0 ]]; then
            echo
            break
        else
            echo -n "."
            countdown=$((countdown-1))
        fi
        if [[ ${countdown} == 0 ]]; then
            echo
            echo "ERROR! Maximum number of retries (${CONNECTION_CHECK_MAX_COUNT}) reached."
            echo
            echo "Last check result:"
            echo "$ ${cmd}"
            echo "${last_check_result}"
            echo
            exit 1
        else
            sleep "${CONNECTION_CHECK_SLEEP_TIME}"
        fi
    done
}

function run_nc() {
    # The image uses `nc -zvvn`; a Python connect is the same check without needing netcat here.
    local host="${1}"
    local port="${2}"
    python -c "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()" "${host}" "${port}"
}

function wait_for_connection {
    local connection_url
    connection_url="${1}"
    local detected_backend detected_host detected_port
    detected_backend=$(python -c "from urllib.parse import urlsplit; import sys; print(urlsplit(sys.argv[1]).scheme)" "${connection_url}")
    detected_host=$(python -c "from urllib.parse import urlsplit; import sys; print(urlsplit(sys.argv[1]).hostname or '')" "${connection_url}")
    detected_port=$(python -c "from urllib.parse import urlsplit; import sys; print(urlsplit(sys.argv[1]).port or '')" "${connection_url}")
    echo BACKEND="${BACKEND:=${detected_backend}}"
    if [[ -z "${detected_port=}" ]]; then
        if [[ ${BACKEND} == "postgres"* ]]; then detected_port=5432
        elif [[ ${BACKEND} == "redis"* ]]; then detected_port=6379
        elif [[ ${BACKEND} == "amqp"* ]]; then detected_port=5672
        fi
    fi
    detected_host=${detected_host:="localhost"}
    echo DB_HOST="${DB_HOST:=${detected_host}}"
    echo DB_PORT="${DB_PORT:=${detected_port}}"
    if [[ -n "${DB_HOST=}" ]] && [[ -n "${DB_PORT=}" ]]; then
        run_check_with_retries "run_nc ${DB_HOST@Q} ${DB_PORT@Q}"
    else
        >&2 echo "The connection details to the broker could not be determined. Connectivity checks were skipped."
    fi
}

function wait_for_airflow_db() {
    run_check_with_retries "airflow db check"
}

function wait_for_celery_broker() {
    local executor
    executor="$(airflow config get-value core executor)"
    if [[ "${executor}" == "CeleryExecutor" ]]; then
        local connection_url
        connection_url="$(airflow config get-value celery broker_url)"
        wait_for_connection "${connection_url}"
    fi
}

unset PIP_USER
umask 0002

CONNECTION_CHECK_MAX_COUNT=${CONNECTION_CHECK_MAX_COUNT:=20}
readonly CONNECTION_CHECK_MAX_COUNT
CONNECTION_CHECK_SLEEP_TIME=${CONNECTION_CHECK_SLEEP_TIME:=3}
readonly CONNECTION_CHECK_SLEEP_TIME

if [[ "${CONNECTION_CHECK_MAX_COUNT}" -gt "0" ]]; then
    wait_for_airflow_db
fi

if [[ ${AIRFLOW_COMMAND} == "bash" ]]; then
   shift
   exec "/bin/bash" "${@}"
elif [[ ${AIRFLOW_COMMAND} == "python" ]]; then
   shift
   exec "python" "${@}"
fi

if [[ ${AIRFLOW_COMMAND} == "airflow" ]]; then
   AIRFLOW_COMMAND="${2:-}"
   shift
fi

if [[ ${AIRFLOW_COMMAND} =~ ^(scheduler|celery)$ ]] \
    && [[ "${CONNECTION_CHECK_MAX_COUNT}" -gt "0" ]]; then
    wait_for_celery_broker
fi

exec "airflow" "${@}"
