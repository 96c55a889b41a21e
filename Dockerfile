# seatflow's binary in a small image: docker build -t seatflow .
# It runs `seatflow run`, or another subcommand such as `serve` (every flag
# has a SEATFLOW_* variable); the local ClickHouse and the dev broker of
# `make run` are not in it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/seatflow ./cmd/seatflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/seatflow /usr/local/bin/seatflow
EXPOSE 9464 8080
ENTRYPOINT ["/usr/local/bin/seatflow"]
CMD ["run"]
