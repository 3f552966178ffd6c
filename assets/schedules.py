"""Schedules: nightly metadata and dataset refresh, weekly retraining.

New chunks are picked up by `new_chunks_sensor` (hourly); the nightly schedules below harvest yesterday's
metadata at 02:00 UTC and refresh the datasets at 05:00 UTC, after the night's chunks are extracted.
Retraining runs weekly (Sunday 06:00 UTC) for the categories and fields that have data, with run config
naming the presets for the code location's hardware (the GPU presets where it has CUDA).
"""

import datetime as dt

import dagster as dg

from assets.jobs import (
    category_dataset_job,
    category_training_job,
    field_dataset_job,
    field_training_job,
    metadata_job,
)
from assets.resources import Compute, DataLake
from assets.training import production_run_config

MIN_TRAIN_IMAGES = 64  # a category with fewer figures than this is not worth a GAN


@dg.schedule(job=metadata_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_metadata_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Harvest yesterday's OAI-PMH records (datestamps are days in UTC)."""
    day = (context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    return dg.RunRequest(partition_key=day, run_key=f"metadata-{day}")


def lake_categories(lake) -> list[str]:
    """Active categories with figures on the lake (a pipeline Lake)."""
    from pipeline.dataset.reader import categories
    from pipeline.source.taxonomy import active_categories

    active = set(active_categories())
    return [c for c in categories(lake) if c in active]


def lake_fields(lake) -> list[str]:
    """Fields with text on the lake (a pipeline Lake)."""
    from pipeline.dataset.reader import dataset

    d = dataset(lake, "text")
    return sorted({f for f in d.to_table(columns=["field"]).column("field").unique().to_pylist() if f})


@dg.schedule(job=category_dataset_job, cron_schedule="0 5 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_shards_schedule(context: dg.ScheduleEvaluationContext, lake: DataLake):
    """Rebuild the training shard of every category that has figures."""
    day = context.scheduled_execution_time.date().isoformat()
    for c in lake_categories(lake.lake()):
        yield dg.RunRequest(partition_key=c, run_key=f"shard-{day}-{c}")


@dg.schedule(job=field_dataset_job, cron_schedule="0 5 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_corpora_schedule(context: dg.ScheduleEvaluationContext, lake: DataLake):
    """Rebuild the text corpus of every field that has text."""
    day = context.scheduled_execution_time.date().isoformat()
    for f in lake_fields(lake.lake()):
        yield dg.RunRequest(partition_key=f, run_key=f"corpus-{day}-{f}")


@dg.schedule(job=category_training_job, cron_schedule="0 6 * * 0", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def weekly_image_training_schedule(context: dg.ScheduleEvaluationContext, lake: DataLake, compute: Compute):
    """Retrain the GAN and VAE of every category with enough figures, with the presets for this hardware."""
    from pipeline.dataset.reader import dataset

    day = context.scheduled_execution_time.date().isoformat()
    run_config = production_run_config(compute.device, ("figure_gan", "figure_vae"))
    for c in lake_categories(lake.lake()):
        if dataset(lake.lake(), "figures", category=c).count_rows() >= MIN_TRAIN_IMAGES:
            yield dg.RunRequest(partition_key=c, run_key=f"train-{day}-{c}", run_config=run_config)


@dg.schedule(job=field_training_job, cron_schedule="0 6 * * 0", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def weekly_text_training_schedule(context: dg.ScheduleEvaluationContext, lake: DataLake, compute: Compute):
    """Retrain the LSTM of every field that has text, with the preset for this hardware."""
    day = context.scheduled_execution_time.date().isoformat()
    run_config = production_run_config(compute.device, ("text_lstm",))
    for f in lake_fields(lake.lake()):
        yield dg.RunRequest(partition_key=f, run_key=f"train-{day}-{f}", run_config=run_config)


ALL_SCHEDULES = [nightly_metadata_schedule, nightly_shards_schedule, nightly_corpora_schedule,
                 weekly_image_training_schedule, weekly_text_training_schedule]
