# The coffee service's image: coffee-server, coffee-kitchen and coffee-client.
#
#   docker build -t coffee-service .          (or: docker-compose build)
#
# Stage "build" installs the -dev packages and runs the same build as the
# native path (scripts/install-deps, then scripts/build). Stage "runtime"
# holds only the shared libraries (scripts/install-deps --runtime) and the
# three programs, run as the unprivileged user "coffee".
# Plain Dockerfile syntax: builds with the legacy builder (no BuildKit).

FROM debian:bookworm-slim AS build
WORKDIR /src
# The package layer first, so that source edits do not reinstall it.
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps
COPY . .
# The commit coffee_build_info reports (docker-compose passes it; the build
# context holds no .git).
ARG COFFEE_GIT_COMMIT=unknown
RUN scripts/build /src/build -DCOFFEE_GIT_COMMIT=${COFFEE_GIT_COMMIT} \
 && install -d /out \
 && install -s -m 0755 build/coffee-server build/coffee-kitchen build/coffee-client /out/

FROM debian:bookworm-slim AS runtime
COPY scripts/install-deps /usr/local/lib/coffee/install-deps
RUN /usr/local/lib/coffee/install-deps --runtime \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --user-group --uid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin coffee
COPY --from=build /out/ /usr/local/bin/
# Fails the build if a shared library the programs need is missing.
RUN if ldd /usr/local/bin/coffee-* | grep 'not found'; then exit 1; fi
USER coffee
# coffee-server listens on 8080, coffee-kitchen on 8081; inside a container
# they must listen on all addresses (BIND=0.0.0.0), not the default 127.0.0.1.
ENV BIND=0.0.0.0
EXPOSE 8080 8081
# Exec form: the program is PID 1 and gets SIGTERM itself.
CMD ["coffee-server"]
