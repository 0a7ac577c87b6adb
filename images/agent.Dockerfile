# corral agent: a Docker host's agent, which needs that host's engine (its socket), the host's network
# namespace (its routed ports, and with NET_ADMIN the stack networks across hosts), and the folder of
# secret files at the same path as on the host (the engine bind-mounts them from there). Built by
# images/build.sh.
#   docker run -d --name corral-agent --network host --cap-add NET_ADMIN \
#     -v /var/run/docker.sock:/var/run/docker.sock -v /dev/shm/corral-secrets:/dev/shm/corral-secrets \
#     -v /var/lib/corral/agent:/var/lib/corral/agent corral-agent:VERSION --join http://CONTROL:8080 --token TOKEN
ARG RUNTIME=corral-runtime:latest
FROM ${RUNTIME}
VOLUME /var/lib/corral/agent
STOPSIGNAL SIGTERM
ENTRYPOINT ["corral", "agent", "--state-dir", "/var/lib/corral/agent"]
