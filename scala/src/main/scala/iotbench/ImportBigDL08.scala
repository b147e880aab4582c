/*
 * ImportBigDL08: rebuild the original's BigDL 0.8 CIFAR-10 ResNet (bigdl_resnet_model_887) in BigDL 2.4.
 *
 * BigDL 2.4 cannot deserialize the 0.8 file (its classes were renamed), but BigDL 0.8's own jar can still read it
 * on this machine (scala/tools/DumpBigDL08.java writes its tensors).  This program builds the same architecture
 * with BigDL 2.4's model zoo - ResNet-20 for CIFAR-10, shortcut type A, as BigDL's TrainCIFAR10 trained it -
 * copies the tensors in module order (checking every shape), and prepends one 1x1 convolution that turns our
 * stream's input (RGB 0-255) into what the 0.8 model was trained on: /255, minus the CIFAR-10 training mean and
 * divided by its std per channel (BigDL's BytesToBGRImg -> BGRImgNormalizer(Cifar10DataSet.trainMean, trainStd) ->
 * BGRImgToSample, which hands the network RGB planes despite its name; checked against that very pipeline).
 * The result takes the same input as models/bigdl_resnet20.model and is saved with saveModule.
 *
 *   spark-submit ... --class iotbench.ImportBigDL08 <iotbench-scala jar> DUMP OUT.model [TEST_BATCH_BIN [JSON]]
 * With a test batch it reports the accuracy of the imported model on it (and writes it to JSON).
 */
package iotbench

import java.io.{BufferedInputStream, DataInputStream, FileInputStream}

import com.intel.analytics.bigdl.dllib.models.resnet.ResNet
import com.intel.analytics.bigdl.dllib.models.resnet.ResNet.{DatasetType, ShortcutType}
import com.intel.analytics.bigdl.dllib.nn.{Sequential, SpatialConvolution}
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.dllib.utils.{Engine, T}
import org.apache.spark.SparkContext

object ImportBigDL08 {
  // Cifar10DataSet.trainMean / trainStd of BigDL (R, G, B).
  val MeanRGB: Array[Double] = Array(0.4913996898739353, 0.4821584196221302, 0.44653092422369434)
  val StdRGB: Array[Double] = Array(0.24703223517429462, 0.2434851308749409, 0.26158784442034005)

  def readDump(path: String): Array[(Array[Int], Array[Float])] = {
    val in = new DataInputStream(new BufferedInputStream(new FileInputStream(path), 1 << 16))
    try Array.fill(in.readInt()) {
      val size = Array.fill(in.readInt())(in.readInt())
      (size, Array.fill(size.product)(in.readFloat()))
    } finally in.close()
  }

  /** 1x1 convolution, RGB 0-255 in, normalised RGB out: out_c = in_c / (255 std_c) - mean_c / std_c. */
  def inputLayer(): SpatialConvolution[Float] = {
    val conv = SpatialConvolution[Float](3, 3, 1, 1)
    val w = conv.weight // (group 1, out 3, in 3, 1, 1)
    w.zero()
    for (c <- 0 until 3) {
      w.setValue(1, c + 1, c + 1, 1, 1, (1.0 / (255.0 * StdRGB(c))).toFloat)
      conv.bias.setValue(c + 1, (-MeanRGB(c) / StdRGB(c)).toFloat)
    }
    conv
  }

  def build(dump: Array[(Array[Int], Array[Float])]): Sequential[Float] = {
    val net = ResNet(10, T("shortcutType" -> ShortcutType.A, "depth" -> 20, "dataSet" -> DatasetType.CIFAR10))
    val targets = net.parameters()._1 ++ net.getExtraParameter()
    if (targets.length != dump.length)
      throw new IllegalArgumentException(s"the dump holds ${dump.length} tensors, BigDL 2.4's ResNet-20 has ${targets.length}")
    targets.zip(dump).zipWithIndex.foreach { case ((t, (size, data)), i) =>
      if (t.nElement() != data.length)
        throw new IllegalArgumentException(s"tensor $i: ${size.mkString("x")} in the dump, ${t.size().mkString("x")} here")
      t.copy(Tensor[Float](data, t.size()))
    }
    Sequential[Float]().add(inputLayer()).add(net)
  }

  def accuracy(model: Classify.Model, images: Array[LabeledImage], batch: Int = 100): (Int, Array[Boolean]) = {
    model.evaluate()
    val buf = new Array[Float](batch * Wire.Pixels)
    val correct = images.grouped(batch).flatMap { group =>
      group.zipWithIndex.foreach { case (img, i) =>
        var k = 0
        while (k < Wire.Pixels) { buf(i * Wire.Pixels + (k % 3) * Wire.Plane + k / 3) = (img.hwc(k) & 0xff).toFloat; k += 1 }
      }
      val predicted = Classify.predict(model, buf, group.length)
      group.indices.map(i => predicted(i) == group(i).label)
    }.toArray
    (correct.count(identity), correct)
  }

  def main(args: Array[String]): Unit = {
    if (args.length < 2) {
      System.err.println("usage: ImportBigDL08 DUMP OUT.model [TEST_BATCH_BIN [JSON]]")
      sys.exit(2)
    }
    val sc = new SparkContext(Engine.createSparkConf().setAppName("ImportBigDL08"))
    try {
      Engine.init
      val model = build(readDump(args(0)))
      model.saveModule(args(1), overWrite = true)
      println(s"${Report.now}: Saved ${args(1)}")
      if (args.length > 2) {
        val images = Cifar10Bin.load(java.nio.file.Paths.get(args(2)))
        val reloaded = Models.load(args(1)) // check the saved file, not the object in memory
        val (n, correct) = accuracy(reloaded, images)
        println("%s: %d of %d or %.2f%% predicted correctly".format(Report.now, n, images.length, 100.0 * n / images.length))
        if (args.length > 3) Report.writeJson(args(3), Seq("correct" -> n, "images" -> images.length,
          "accuracy" -> n.toDouble / images.length, "correct_flags" -> correct.map(b => if (b) '1' else '0').mkString))
      }
    } finally sc.stop()
  }
}
