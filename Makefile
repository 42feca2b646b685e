# segment — PGXS build.  `make && make install`, then `make installcheck`
# against a running server (scripts/test.sh does all of it in a throwaway cluster).
EXTENSION = segment
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = segment
OBJS = \
	src/segment.o \
	src/validate.o \
	src/text_form.o \
	src/model_type.o \
	src/model_io.o \
	src/model_sql.o \
	src/model_cache.o \
	src/kmeans_assign.o \
	src/rows_state.o \
	src/kmeans_sample.o \
	src/kmeans_agg.o \
	src/kmeans_step.o \
	src/big_alloc.o src/fit_threads.o src/kmeans.o \
	src/metrics_agg.o \
	src/metrics.o \
	src/classification.o \
	src/nn.o \
	src/nn_options.o \
	src/net_apply.o \
	src/mlp.o \
	src/autoencoder.o \
	src/rfm.o \
	src/segmenter.o \
	src/segmenter_build.o \
	src/segment_of_support.o \
	src/rfm_grade.o \
	src/interactions.o src/als.o src/recommender_fit.o src/recommend.o \
	src/moments.o

DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(wildcard sql/$(EXTENSION)--*--*.sql)
EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql

# pg_regress inputs: every sql/*.sql that is not an install or upgrade script.
REGRESS = $(filter-out segment%,$(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=segment
# isolation specs (specs/*.spec): concurrent sessions
ISOLATION = $(basename $(notdir $(wildcard specs/*.spec)))
ISOLATION_OPTS = --load-extension=segment

PG_CPPFLAGS += -Isrc $(shell pkg-config --cflags openblas)
# --no-as-needed: LAPACKE (used by ALS and PCA) stays linked even before any caller.
SHLIB_LINK += -pthread $(shell pkg-config --libs openblas) -Wl,--no-as-needed -llapacke -Wl,--as-needed

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the install script: the core, then one file per capability
INSTALL_PARTS = sql/$(EXTENSION).sql sql/$(EXTENSION)_rfm.sql sql/$(EXTENSION)_pipeline.sql \
	sql/$(EXTENSION)_classification.sql sql/$(EXTENSION)_mlp.sql sql/$(EXTENSION)_recommend.sql
sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

.PHONY: bench
bench:
	scripts/bench.sh

# PGXS tracks no header dependencies (unless PostgreSQL was built with
# --enable-depend): a changed struct must rebuild every file that sees it.
$(OBJS): $(wildcard src/*.h)
