# corral server: the embedded control plane (API, DynamoDB and SQS stand-ins, controller), its data in
# /var/lib/corral. Built by images/build.sh on corral-runtime (Node 22 and the installed corral package,
# made from this checkout: no registry). Inside the container it listens on all of the container's
# interfaces; publish the port to the host's loopback (the API's default reach):
#   docker run -d --name corral -p 127.0.0.1:8080:8080 -v corral-data:/var/lib/corral corral-server:VERSION
# With a local agent, give it the engine: -v /var/run/docker.sock:/var/run/docker.sock and drop --no-agent.
ARG RUNTIME=corral-runtime:latest
FROM ${RUNTIME}
ENV CORRAL_DATA=/var/lib/corral
VOLUME /var/lib/corral
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["corral", "server", "--listen", "0.0.0.0", "--port", "8080"]
CMD ["--no-agent"]
