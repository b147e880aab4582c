/*
 * infer_imagenet_max: classify ImageNet validation images held in memory with a BigDL ResNet, as fast as
 * possible, in a timed loop.
 *
 *   spark-submit --master local[2] --jars <bigdl jars> --driver-class-path <bigdl jars> \
 *     --class com.intel.analytics.bigdl.dllib.example.imageclassification.infer_imagenet_max <iotbench-scala jar> \
 *     -f ../shared/data/imagenet-sample [-m resnet-50.t7] [-d 60] [-b N]
 *
 * Flags of the original: -f/--folder, -m/--modelPath, -d/--duration, -b/--batchSize.  -m is optional here: no
 * pretrained ImageNet weights exist offline, so without it a ResNet-50 (BigDL's model zoo definition) runs with
 * random weights, throughput is measured and accuracy is not scored.  Ours: --images N (use the first N images),
 * --repeat R (the original used each image 5x), --depth (18/34/50/101/152 for the random-weight model), --json.
 * Images are decoded, resized and cropped once before the clock starts; the timed loop normalises and infers.
 */
package com.intel.analytics.bigdl.dllib.example.imageclassification

import com.intel.analytics.bigdl.dllib.models.resnet.ResNet
import com.intel.analytics.bigdl.dllib.models.resnet.ResNet.{DatasetType, ShortcutType}
import com.intel.analytics.bigdl.dllib.models.utils.ModelBroadcast
import com.intel.analytics.bigdl.dllib.tensor.{Storage, Tensor}
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.dllib.utils.{Engine, T}
import iotbench.{Classify, ImageNetFolder, LabeledJpeg, LocalModels, Models, Report}
import org.apache.spark.SparkContext
import scopt.OptionParser

object infer_imagenet_max {

  case class Params(
    folder: String = "",
    modelPath: String = "",
    duration: Int = 60,
    batchSize: Int = 0,
    images: Int = 0,
    repeat: Int = 5,
    depth: Int = 50,
    json: String = ""
  )

  val parser: OptionParser[Params] = new OptionParser[Params]("infer_imagenet_max") {
    head("infer_imagenet_max", "- maximum-throughput BigDL ResNet over ImageNet images in memory")
    opt[String]('f', "folder").required().text("location of test image data (DIR/<wnid>/<file>.JPEG or DIR/val/...)")
      .action((x, c) => c.copy(folder = x))
    opt[String]('m', "modelPath").text("model file (BigDL or Torch .t7); default: ResNet with random weights, accuracy not scored")
      .action((x, c) => c.copy(modelPath = x))
    opt[Int]('d', "duration").text("duration (sec), default 60").action((x, c) => c.copy(duration = x))
    opt[Int]('b', "batchSize").text("images per forward call over all cores (default: 4 per core)")
      .action((x, c) => c.copy(batchSize = x))
    opt[Int]("images").text("use only the first N images found (default: all)").action((x, c) => c.copy(images = x))
    opt[Int]("repeat").text("use each image this many times per iteration (default: 5, as the original)")
      .action((x, c) => c.copy(repeat = x))
    opt[Int]("depth").text("ResNet depth of the random-weight model (default: 50)").action((x, c) => c.copy(depth = x))
    opt[String]("json").text("also write the run's summary to this JSON file").action((x, c) => c.copy(json = x))
    help("help").text("print this usage text")
  }

  def main(args: Array[String]): Unit = parser.parse(args, Params()) match {
    case Some(p) => sys.exit(run(p))
    case None => sys.exit(2)
  }

  def run(param: Params): Int = {
    val conf = Engine.createSparkConf().setAppName("infer_imagenet_max")
    val sc = new SparkContext(conf)
    try {
      Engine.init
      val cores = Engine.nodeNumber() * Engine.coreNumber()
      val scored = param.modelPath.nonEmpty
      val model = if (scored) {
        println("\n%s: Loading trained model from %s".format(Report.now, param.modelPath))
        try Models.load(param.modelPath) catch {
          case e @ (_: java.io.FileNotFoundException | _: IllegalArgumentException) =>
            System.err.println(s"error: ${e.getMessage}")
            return 2
        }
      } else {
        println("\n%s: No model file given: ResNet-%d with random weights (accuracy not scored)".format(Report.now, param.depth))
        ResNet(1000, T("shortcutType" -> ShortcutType.B, "depth" -> param.depth, "dataSet" -> DatasetType.ImageNet))
      }
      model.evaluate()

      println("%s: Loading images from %s".format(Report.now, param.folder))
      val root = try ImageNetFolder.root(param.folder) catch {
        case e: java.io.FileNotFoundException => System.err.println(s"error: ${e.getMessage}"); return 2
      }
      val found = ImageNetFolder.paths(root)
      val chosen = if (param.images > 0) found.take(param.images) else found
      if (chosen.isEmpty) { System.err.println(s"error: no images under $root"); return 2 }
      val loaded = chosen.map { case (label, path) => LabeledJpeg(label, path.getFileName.toString, ImageNetFolder.prepare(path)) }
      val all = Seq.fill(math.max(param.repeat, 1))(loaded).flatten
      val n = all.length
      val using = if (chosen.length < found.length) s" (using the first ${chosen.length})" else ""
      println("%s: %d images found%s, using each image %dx for %d total images".format(Report.now, found.length, using,
        param.repeat, n))
      val rdd = sc.parallelize(all, cores).cache()
      rdd.count()
      println("%s: Parallelization complete".format(Report.now))

      val perCall = math.max(1, math.ceil((if (param.batchSize > 0) param.batchSize else 4 * cores).toDouble / cores).toInt)
      val bcModel = ModelBroadcast[Float]().broadcast(sc, model)
      println("%s: Running inference loop for %d seconds".format(Report.now, param.duration))
      val start = System.nanoTime
      var elapsed = 0.0
      var iteration = 1
      var total = 0L
      var totalCorrect = 0L
      // Wall clock, not nanoTime: executors on other machines compare against it.  Partitions stop taking
      // batches once it has passed, so a slow model cannot overrun -d by a whole pass over the images.
      val deadlineMs = System.currentTimeMillis + param.duration * 1000L
      do {
        val (inferred, correct) = rdd.mapPartitions { it =>
          Iterator(LocalModels.withModel(bcModel)(classify(_, it, perCall, deadlineMs)))
        }.reduce((a, b) => (a._1 + b._1, a._2 + b._2))
        elapsed = (System.nanoTime - start) / 1e9
        total += inferred
        totalCorrect += correct
        val acc = if (scored) "%d or %.1f%% predicted correctly".format(correct, 100.0 * correct / math.max(inferred, 1))
        else "accuracy not scored (random weights)"
        val partial = if (inferred < n) s" (of $n: -d reached)" else ""
        println("%s: Iteration %d: %d images inferred%s. %s".format(Report.now, iteration, inferred, partial, acc))
        iteration += 1
      } while (elapsed < param.duration)
      val rate = total / elapsed
      println("%s: Test completion: %d images inferred in %.1f sec or %.1f images/second".format(Report.now, total, elapsed, rate))
      Report.writeJson(param.json, Seq(
        "engine" -> "bigdl-scala-imagenet", "model" -> (if (scored) param.modelPath else s"resnet${param.depth}-random"),
        "batch" -> perCall * cores, "images" -> total, "distinct_images" -> loaded.length, "iterations" -> (iteration - 1),
        "elapsed_s" -> elapsed, "images_per_sec" -> rate,
        "correct" -> (if (scored) Some(totalCorrect) else None),
        "accuracy" -> (if (scored) Some(totalCorrect.toDouble / total) else None)))
      0
    } finally sc.stop()
  }

  /** (images classified, images whose predicted class equals the label) of a partition, stopping at the
   * first batch boundary after `deadlineMs` (each partition classifies at least one batch). */
  def classify(model: Classify.Model, images: Iterator[LabeledJpeg], perCall: Int, deadlineMs: Long): (Long, Long) = {
    val size = 3 * ImageNetFolder.Crop * ImageNetFolder.Crop
    val buf = new Array[Float](perCall * size)
    var correct = 0L
    var inferred = 0L
    val batches = images.grouped(perCall)
    while (batches.hasNext && (inferred == 0 || System.currentTimeMillis < deadlineMs)) {
      val group = batches.next()
      inferred += group.length
      group.zipWithIndex.foreach { case (img, i) => ImageNetFolder.normalizeInto(img.hwc, buf, i * size) }
      val input = Tensor[Float](Storage[Float](buf), 1, Array(group.length, 3, ImageNetFolder.Crop, ImageNetFolder.Crop))
      val predicted = Classify.argmaxRows(model.forward(input).toTensor[Float], group.length)
      correct += group.indices.count(i => predicted(i) == group(i).label)
    }
    (inferred, correct)
  }
}
