/*
 * infer_cifar_stream: classify a stream of CIFAR-10 text lines with Spark Streaming and a BigDL ResNet.
 *
 *   spark-submit --master local[2] --jars <bigdl jars> --driver-class-path <bigdl jars> \
 *     --class com.intel.analytics.bigdl.dllib.models.resnet.infer_cifar_stream <iotbench-scala jar> \
 *     -m models/bigdl_resnet20.model [-r 1] [-i 127.0.0.1] [-p 10000] [-b 128] [--json FILE]
 *
 * (`iotbench infer scala-stream ...` builds the jar and runs exactly this.)  The sender listens (`nc -lk PORT`,
 * `iotbench send --listen PORT --format %d`, or send_images_cifar_stream --listen PORT); this program connects.
 * Lines may be v1, v2, comma or the original's bigdl08 format (iotbench/Wire.scala); bad lines are counted by
 * reason, never fatal.  The model takes N x 3 x 32 x 32 RGB floats in 0-255 and normalises inside its graph.
 *
 * Prints the original's lines (per interval, "No input", "Stopping stream", the final summary) and our accounting
 * line.  Stops at the end marker (empty line / v2 trailer), when the sender closes, or after an empty interval
 * once images have arrived (the original's rule).  Throughput = images classified / (last classified - first
 * received); the original subtracted whole empty intervals and 2 s instead.
 *
 * The summary follows the one accounting model of every iotbench receiver (iotbench/Accounting.scala, ported from
 * iotbench/metrics.py) with the same JSON keys, and so does the exit status: 0 when the books close and at least
 * one image was classified, 3 when the stream ended without its end marker (truncated), 4 when sent !=
 * classified + rejected + lost, 5 when nothing was classified; 1 when the classifier failed, 2 for usage errors.
 *
 * Spark's backpressure is on: the receiver reads only as fast as the classifier keeps up (starting at
 * --initialRate lines/s), so a sender at max rate is slowed by TCP instead of filling the driver's heap with a
 * backlog (10,000 unthrottled images ran a 3 GB driver out of memory).
 */
package com.intel.analytics.bigdl.dllib.models.resnet

import java.util.concurrent.atomic.AtomicBoolean

import com.intel.analytics.bigdl.dllib.iotbench.{BigDLEngine, EngineMax}
import com.intel.analytics.bigdl.dllib.models.utils.ModelBroadcast
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.dllib.utils.Engine
import iotbench.{Accounting, Classify, LineReceiver, Models, Report, StreamCounts, Wire}
import org.apache.spark.SparkContext
import org.apache.spark.streaming.{Seconds, StreamingContext, Time}
import scopt.OptionParser

object infer_cifar_stream {

  case class Params(
    reportingInterval: Int = 1,
    sourceIPAddress: String = "127.0.0.1",
    sourcePort: Int = 10000,
    model: String = "",
    batchSize: Int = 128,
    json: String = "",
    connectTimeout: Int = 0,
    maxRate: Int = 0,
    initialRate: Int = 200,
    bigdlEngine: String = "mklblas"
  )

  val parser: OptionParser[Params] = new OptionParser[Params]("infer_cifar_stream") {
    head("infer_cifar_stream", "- Spark Streaming + BigDL ResNet classifier of CIFAR-10 text lines")
    opt[Int]('r', "reportingInterval").text("reporting (batch) interval in seconds (default: 1)")
      .action((x, c) => c.copy(reportingInterval = x))
    opt[String]('i', "sourceIPAddress").text("address of the sender (default: 127.0.0.1)")
      .action((x, c) => c.copy(sourceIPAddress = x))
    opt[Int]('p', "sourcePort").text("port of the sender (default: 10000)").action((x, c) => c.copy(sourcePort = x))
    opt[String]('m', "model").required().text("BigDL model file (required)").action((x, c) => c.copy(model = x))
    opt[Int]('b', "batchSize").text("images per forward call over all cores, split among them as BigDL's predict does " +
      "(default: 128; the original's 2000 was for 96 cores and runs out of a small driver's memory)")
      .action((x, c) => c.copy(batchSize = x))
    opt[String]("json").text("also write the run's summary to this JSON file").action((x, c) => c.copy(json = x))
    opt[Int]("connectTimeout").text("give up when the sender cannot be reached for this many seconds (default: 0, keep trying)")
      .action((x, c) => c.copy(connectTimeout = x))
    opt[Int]("maxRate").text("cap on lines/s the receiver accepts (spark.streaming.receiver.maxRate; default 0 = none)")
      .action((x, c) => c.copy(maxRate = x))
    opt[Int]("initialRate").text("lines/s the receiver accepts until Spark's backpressure has measured the processing " +
      "rate (default: 200); a sender at max rate then runs at the rate the classifier sustains")
      .action((x, c) => c.copy(initialRate = x))
    opt[String]("bigdlEngine").text("BigDL's compute engine: mklblas (default) or mkldnn (the model converted for " +
      "MKL-DNN inference, unfused when MKL-DNN refuses its fused graph, as for our ResNet20 twin; refused in one " +
      "line when MKL-DNN cannot run it at all, as for the imported BigDL 0.8 model)")
      .action((x, c) => c.copy(bigdlEngine = x))
    help("help").text("print this usage text")
  }

  def main(args: Array[String]): Unit = parser.parse(args, Params()) match {
    case Some(p) => sys.exit(run(p))
    case None => sys.exit(2)
  }

  def run(param: Params): Int = {
    println("%s: Classifying images from %s:%d with Resnet model %s, with %d second intervals"
      .format(Report.now, param.sourceIPAddress, param.sourcePort, param.model, param.reportingInterval))
    // before anything touches BigDL's Engine, which reads its engine type once
    BigDLEngine.select(param.bigdlEngine).foreach { e => System.err.println(s"error: $e"); return 2 }
    val conf = BigDLEngine.executorConf(Engine.createSparkConf(), param.bigdlEngine).setAppName("infer_cifar_stream")
      .setIfMissing("spark.streaming.backpressure.enabled", "true") // else a max-rate sender fills the heap
      .setIfMissing("spark.streaming.backpressure.initialRate", param.initialRate.toString)
      .setIfMissing("spark.streaming.stopGracefullyOnShutdown", "false")
    if (param.maxRate > 0) conf.set("spark.streaming.receiver.maxRate", param.maxRate.toString)
    val sc = new SparkContext(conf)
    try {
      Engine.init
      val model = try Models.load(param.model) catch {
        case e @ (_: java.io.FileNotFoundException | _: IllegalArgumentException) =>
          System.err.println(s"error: ${e.getMessage}")
          return 2
      }
      model.evaluate()
      inferenceRefusal(model, param).foreach { e => System.err.println(s"error: $e"); return 2 }
      val cores = Engine.nodeNumber() * Engine.coreNumber()
      val perCall = math.max(1, math.ceil(param.batchSize.toDouble / cores).toInt)
      try classify(sc, param, ModelBroadcast[Float]().broadcast(sc, model), perCall)
      catch {
        case e: Exception => // one line with the root cause; Spark's own log has the trace
          var root: Throwable = e
          while (root.getCause != null && root.getCause != root) root = root.getCause
          System.err.println(s"error: stream classifier failed: ${root.getClass.getName}: ${root.getMessage}")
          1
      }
    } finally sc.stop()
  }

  /** Why the JVM's engine cannot run `model` (converted for inference and tried on one blank image, here on the
   * driver, so that the refusal comes before the stream starts), or None.  MKL-BLAS runs every model. */
  def inferenceRefusal(model: BigDLEngine.Model, param: Params): Option[String] =
    if (!BigDLEngine.isDnn) None
    else try {
      BigDLEngine.forward(BigDLEngine.forInference(model.cloneModule()), Tensor[Float](1, 3, Wire.Side, Wire.Side))
      None
    } catch {
      case e: Throwable =>
        Some(s"BigDL's mkldnn engine cannot run ${param.model}: ${BigDLEngine.rootCause(e).getClass.getSimpleName}: " +
          s"${BigDLEngine.rootMessage(e)} (use --bigdl-engine mklblas)")
    }

  def classify(sc: SparkContext, param: Params, bcModel: ModelBroadcast[Float], perCall: Int): Int = {
    val ssc = new StreamingContext(sc, Seconds(param.reportingInterval))
    val stream = ssc.receiverStream(new LineReceiver(param.sourceIPAddress, param.sourcePort, param.connectTimeout))
    val stop = new AtomicBoolean(false)
    @volatile var total = StreamCounts()
    @volatile var intervals = 0
    @volatile var lastDoneUs = 0L
    @volatile var firstBatchUs = Long.MaxValue

    stream.foreachRDD { (rdd, time: Time) =>
      if (!stop.get) {
        val counts = rdd.mapPartitions { lines =>
          Iterator(EngineMax.withModel(bcModel)(Classify.stream(lines, _, perCall)))
        }.collect().foldLeft(StreamCounts())(_ merge _)
        total = total.merge(counts)
        if (counts.errors.nonEmpty) {
          counts.errors.foreach(e => System.err.println(s"error: ${e.stripPrefix("error ")}"))
          stop.set(true)
        } else if (counts.lines == 0 && counts.eofLines < 0 && !counts.ended) {
          println("%s: No input".format(Report.now))
          if (intervals > 0) stop.set(true)
        } else {
          if (counts.lines > 0) {
            intervals += 1
            firstBatchUs = math.min(firstBatchUs, time.milliseconds * 1000L - param.reportingInterval * 1000000L)
            lastDoneUs = Report.epochMicros
            val rej = if (counts.rejectedCount > 0) s" (${counts.rejectedCount} lines rejected)" else ""
            println("%s: %d images received in interval - %d or %.1f%% predicted correctly%s".format(Report.now,
              counts.classified, counts.correct, 100.0 * counts.correct / math.max(counts.classified, 1), rej))
          }
          if (counts.ended || counts.eofLines >= 0) stop.set(true) // end marker or connection closed
        }
      }
    }

    ssc.start()
    while (!stop.get && !ssc.awaitTerminationOrTimeout(50)) {}
    println("%s: Stopping stream".format(Report.now))
    ssc.stop(stopSparkContext = false, stopGracefully = false)
    val status = summarize(param, total, intervals, if (total.firstUs < Long.MaxValue) total.firstUs else firstBatchUs,
      lastDoneUs)
    if (total.errors.nonEmpty) 1 else status
  }

  private def count(v: Option[Long]): String = v.map(_.toString).getOrElse("n/a")

  /** Print the original's summary and our accounting line, write --json; returns the exit status. */
  def summarize(param: Params, t: StreamCounts, intervals: Int, startUs: Long, endUs: Long): Int = {
    // the end marker is the empty line (or a v2 trailer); a stream that stopped without one was cut
    val truncated = t.lines > 0 && !t.ended && t.sentTotal < 0
    val (books, correct) = Accounting.of(t, truncated)
    val (status, reason) = Accounting.exitStatus(books)
    val elapsed = if (t.classified > 0) math.max(endUs - startUs, 1L) / 1e6 else 0.0
    val rate = if (elapsed > 0) Some(books.classified / elapsed) else None
    val accuracy = if (books.classified > 0) Some(correct.toDouble / books.classified) else None
    println(("\n%s: %d images received in %.1f seconds (%d intervals), or %s images/second. %d of %d or %s%% " +
      "predicted correctly").format(Report.now, books.classified, elapsed, intervals, rate.map(r => f"$r%.0f")
      .getOrElse("n/a"), correct, books.classified, accuracy.map(a => f"${100 * a}%.1f").getOrElse("n/a")))
    // Our accounting (Accounting.scala = metrics.close_books); latency = classified - sent.
    val lat = t.latenciesUs.sorted
    val (p50, p90, p99, pmax) = (Report.percentileMs(lat, 50), Report.percentileMs(lat, 90), Report.percentileMs(lat, 99),
      Report.percentileMs(lat, 100))
    val reasons = if (t.rejected.isEmpty) "" else t.rejected.toSeq.sorted.map { case (k, v) => s"$k: $v" }.mkString(" (", ", ", ")")
    val lost = books.lost.map(_.toString).getOrElse("n/a (v1 stream: loss not measurable)")
    // the keys and wording of iotbench.report.extra_line
    println(s"Latency p50 ${Report.ms(p50)} ms, p90 ${Report.ms(p90)} ms, p99 ${Report.ms(p99)} ms, max ${Report.ms(pmax)} ms; " +
      s"sent ${count(books.sent)}, received ${books.received}, rejected ${books.rejected}$reasons, lost $lost, " +
      s"duplicated ${count(books.duplicated)}, reordered ${count(books.reordered)}, garbage_lines ${books.garbageLines}, " +
      s"truncated ${if (books.truncated) "yes" else "no"}; queue high-water n/a")
    t.samples.foreach(s => System.err.println(s"${Report.now}: rejected line: $s"))
    reason.foreach(r => System.err.println(s"${Report.now}: $r"))
    Report.writeJson(param.json, Seq(
      "engine" -> "bigdl-scala-stream", "model" -> param.model, "batch" -> param.batchSize,
      "bigdl_engine" -> BigDLEngine.current,
      "sent" -> books.sent, "sent_at_least" -> books.sentAtLeast, "received" -> books.received,
      "classified" -> books.classified, "correct" -> correct, "accuracy" -> accuracy,
      "rejected" -> books.rejected, "rejected_by_reason" -> t.rejected, "lost" -> books.lost,
      "duplicated" -> books.duplicated, "reordered" -> books.reordered, "garbage_lines" -> books.garbageLines,
      "truncated" -> books.truncated, "interrupted" -> false, "sequenced" -> books.sequenced,
      "accounted" -> books.closes, "elapsed_s" -> elapsed, "images_per_sec" -> rate, "receiver_lines" -> t.eofLines,
      "intervals" -> intervals, "interval_s" -> param.reportingInterval, "ended_cleanly" -> t.ended,
      "p50_ms" -> p50, "p90_ms" -> p90, "p99_ms" -> p99, "max_ms" -> pmax, "exit_status" -> status))
    status
  }
}
