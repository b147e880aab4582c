/*
 * BigDL's two compute engines, chosen per JVM: mklblas (the default: BigDL's own layers on Intel MKL's BLAS) and
 * mkldnn (Intel MKL-DNN primitives, with conv+bn+relu fusion for inference).
 *
 * Why this object lives in a com.intel.analytics.bigdl package: what the MKL-DNN engine needs is private[bigdl]
 * in BigDL 2.4 - the engine type (Engine.getEngineType), the conversion of a graph to its IR and then to a
 * DnnGraph (ConversionUtils.convert = model.toGraph() -> StaticGraph.toIRgraph() -> IRGraph.build()) and the one
 * thread MKL-DNN must run on (Engine.dnnComputing).  Setting only -Dbigdl.engineType=mkldnn converts nothing:
 * BigDL's own layers then run as before, with the single-thread pools of the MKL-DNN set-up (slower).
 *
 * BigDL reads the property once, when its Engine object is first touched, so `select` must run before anything
 * else of BigDL (Engine.createSparkConf included); executors on other JVMs get it through
 * spark.executor.extraJavaOptions (`executorConf`).
 *
 * Status (BigDL 2.4, 2-core AMD EPYC): the conversion below runs our CNN twin (2.1x MKL-BLAS, the same
 * predictions; EngineMax uses it for the Python max path and BigDL stream, --bigdl-engine mkldnn) and our ResNet20
 * twin unfused (5x MKL-BLAS in EngineProbe, the same predictions; the Scala stream with --bigdl-engine mkldnn), not
 * the imported BigDL 0.8 model - see docs/bigdl.md; EngineProbe runs any of them under either engine.
 */
package com.intel.analytics.bigdl.dllib.iotbench

import com.intel.analytics.bigdl.dllib.nn.abstractnn.{AbstractModule, Activity}
import com.intel.analytics.bigdl.dllib.nn.{AddConstant, CAdd, CMul, Graph, Input, MulConstant, Sequential, SpatialConvolution, StaticGraph}
import com.intel.analytics.bigdl.dllib.nn.mkldnn.DnnGraph
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.dllib.utils.{Engine, MklBlas, MklDnn}
import com.intel.analytics.bigdl.dllib.utils.intermediate.{ConversionUtils, IRGraph}
import iotbench.Wire
import org.apache.spark.SparkConf

object BigDLEngine {
  type Model = AbstractModule[Activity, Activity, Float]
  val Names: Seq[String] = Seq("mklblas", "mkldnn")
  val Property = "bigdl.engineType"

  /** Check `name` and set BigDL's engine property for this JVM; Some(one-line error) when it cannot be used. */
  def select(name: String): Option[String] = {
    if (!Names.contains(name)) return Some(s"unknown --bigdl-engine '$name' (choose from ${Names.mkString(", ")})")
    Option(System.getProperty(Property)).map(_.toLowerCase) match {
      case Some(other) if other != name =>
        Some(s"--bigdl-engine $name but the JVM was started with -D$Property=$other (drop one of them)")
      case _ =>
        System.setProperty(Property, name)
        None
    }
  }

  /** The engine BigDL actually runs (after `select`, this is its name: the summary records this, not the flag). */
  def current: String = Engine.getEngineType() match {
    case MklDnn => "mkldnn"
    case MklBlas => "mklblas"
  }

  def isDnn: Boolean = Engine.getEngineType() == MklDnn

  /** The same engine for executors in other JVMs (a no-op for local[N], whose executor is this JVM). */
  def executorConf(conf: SparkConf, name: String): SparkConf = {
    val key = "spark.executor.extraJavaOptions"
    val opt = s"-D$Property=$name"
    val old = conf.getOption(key).getOrElse("")
    if (old.contains(s"-D$Property=")) conf else conf.set(key, (old + " " + opt).trim)
  }

  /** Element-wise layers without shape inference (computeOutputShape): MKL-DNN's BlasWrapper cannot wrap them
   * ("Haven't been implemented yet. Do not use it with Keras Layer"), so a graph that starts with them - our
   * ResNet20 twin's /255 and minus-mean input layers - runs them under BLAS in front of the converted rest. */
  private def elementwise(m: AnyRef): Boolean = m match {
    case _: MulConstant[_] | _: CAdd[_] | _: AddConstant[_] | _: CMul[_] => true
    case _ => false
  }

  /** TensorFlow's "same" padding (BigDL pad -1) made explicit where that is exact: 0 for 1x1 kernels, (k-1)/2 for
   * odd kernels at stride 1.  Tried while MKL-DNN refused a convolution descriptor of our ResNet20 twin ("[mkldnn]
   * ivalid arguments"), which turned out to be a fused one (see `forInference`); MKL-DNN also takes the implicit
   * form, stride-2 "same" included, so this is kept only as the form the measured runs used.  The rewritten layers
   * compute exactly what the originals did. */
  private def fixOneByOnePadding(g: StaticGraph[Float]): Unit =
    g.getForwardExecutions().foreach { node =>
      (node.element: AnyRef) match {
        case c: SpatialConvolution[Float] @unchecked if (c.padW < 0 || c.padH < 0) &&
            ((c.kernelW == 1 && c.kernelH == 1) || (c.strideW == 1 && c.strideH == 1 && c.kernelW % 2 == 1 && c.kernelH % 2 == 1)) =>
          // same padding that is symmetric: 0 for 1x1 kernels, (k-1)/2 for odd kernels at stride 1
          val fixed = SpatialConvolution[Float](c.nInputPlane, c.nOutputPlane, c.kernelW, c.kernelH, c.strideW, c.strideH,
            (c.kernelW - 1) / 2, (c.kernelH - 1) / 2, c.nGroup, withBias = c.withBias)
          fixed.weight.copy(c.weight)
          if (c.withBias) fixed.bias.copy(c.bias)
          fixed.setName(c.getName())
          node.setElement(fixed.asInstanceOf[Model])
        case _ =>
      }
    }

  /** (the leading element-wise layers, the graph after them), rewiring the graph's nodes. */
  private def splitInput(g: StaticGraph[Float]): (Seq[Model], Model) = {
    fixOneByOnePadding(g)
    if (g.inputs.length != 1) return (Nil, Graph[Float](g.inputs.toArray, g.outputs.toArray))
    val lead = scala.collection.mutable.ArrayBuffer.empty[Model]
    var node = g.inputs.head
    while (node.nextNodes.length == 1 && node.nextNodes.head.prevNodes.length == 1 &&
      elementwise(node.nextNodes.head.element)) {
      node = node.nextNodes.head
      lead += node.element
    }
    if (lead.isEmpty) return (Nil, Graph[Float](g.inputs.toArray, g.outputs.toArray))
    val input = Input[Float]()
    node.nextNodes.toList.foreach { next =>
      next.removePrevEdges()
      next.from(input)
    }
    (lead.toList, Graph[Float](Array(input), g.outputs.toArray))
  }

  /** BigDL's switch for MKL-DNN layer fusion (conv+bn, conv+relu, conv+sum), read each time a DnnGraph compiles. */
  val FusionProperty = "bigdl.mkldnn.fusion"

  def fusionOn: Boolean = System.getProperty(FusionProperty, "true").toBoolean

  /** What the engine runs: the model itself under mklblas; under mkldnn its IR graph (model.toGraph() ->
   * StaticGraph.toIRgraph(), ConversionUtils.convert) built as a DnnGraph of MKL-DNN layers, behind the leading
   * element-wise layers MKL-DNN cannot take (see `elementwise`).  Throws when BigDL cannot convert it.
   *
   * A DnnGraph fuses layers when it compiles, at its first forward.  On our ResNet20 twin MKL-DNN refuses the
   * descriptor of one fused convolution ("[mkldnn] ivalid arguments"): a residual sum folded into a convolution
   * whose other operand is the output of the first convolution (3 input channels).  Found layer by layer
   * (docs/bigdl.md); the same graph unfused runs, with Keras' predictions.  So under fusion a copy of the model is
   * converted and compiled on one blank CIFAR-10 image first, and when MKL-DNN refuses it fusion is turned off for
   * this JVM (`FusionProperty`) before the model itself is converted; its first real forward then compiles it at
   * the shape it will keep (EngineMax), unfused.  The CNN twin keeps its fusion (12% faster than without). */
  def forInference(model: Model): Model = {
    model.evaluate()
    if (!isDnn) return model
    if (fusionOn) {
      try forward(convert(model.cloneModule()), Tensor[Float](1, 3, Wire.Side, Wire.Side))
      catch {
        case e: Throwable if refusedByMklDnn(e) =>
          System.setProperty(FusionProperty, "false")
          System.err.println(s"mkldnn: MKL-DNN refused the fused graph (${rootMessage(e)}); running it unfused " +
            s"(-D$FusionProperty=false)")
      }
    }
    convert(model)
  }

  /** Whether MKL-DNN's library refused a primitive descriptor (its one message, "[mkldnn] ..."). */
  private def refusedByMklDnn(e: Throwable): Boolean = rootMessage(e).startsWith("[mkldnn]")

  /** The innermost cause of `e`: the exception BigDL's wrappers (UnKnownException, ExecutionException) carry. */
  def rootCause(e: Throwable): Throwable = {
    var root = e
    while (root.getCause != null && root.getCause != root) root = root.getCause
    root
  }

  /** The first line of the root cause's message ("" when it has none). */
  def rootMessage(e: Throwable): String =
    Option(rootCause(e).getMessage).flatMap(_.linesIterator.toSeq.headOption).map(_.trim).getOrElse("")

  /** `model` converted for MKL-DNN inference (see `forInference`), not yet compiled. */
  private def convert(model: Model): Model = {
    val graph = model match {
      case g: StaticGraph[Float] => g
      case m => m.toGraph() match {
        case g: StaticGraph[Float] => g
        case g => throw new IllegalArgumentException(s"BigDL's MKL-DNN engine cannot convert " +
          s"${model.getClass.getSimpleName}: toGraph() gives a ${g.getClass.getSimpleName}, not a StaticGraph")
      }
    }
    val (lead, rest) = splitInput(graph)
    val ir = ConversionUtils.convert[Float](rest.evaluate()) match {
      case ir: IRGraph[Float] => if (ir.isBuild) ir else ir.build()
      case other => other
    }
    ir.evaluate()
    if (lead.isEmpty) ir
    else {
      val seq = Sequential[Float]()
      lead.foreach(seq.add(_))
      seq.add(ir).evaluate()
    }
  }

  /** Inner DnnGraph of a converted model, to say how many of its layers MKL-DNN runs natively. */
  def describe(model: Model): String = model match {
    case s: Sequential[Float] => s.modules.map(m => describe(m.asInstanceOf[Model])).mkString(" -> ")
    case ir: IRGraph[Float] => ir.graph match {
      case g: DnnGraph =>
        val kinds = g.getForwardExecutions().map(_.element.getClass.getSimpleName).groupBy(identity)
          .map { case (k, v) => s"$k x${v.length}" }.toSeq.sorted
        s"DnnGraph: ${kinds.mkString(", ")}"
      case g => s"IRGraph over ${g.getClass.getSimpleName}"
    }
    case m => m.getClass.getSimpleName
  }

  /** `forward` of a model from `forInference`.  No extra thread hop: BigDL 2.4's IRGraph already runs its DnnGraph
   * on Engine.dnnComputing, the one thread MKL-DNN may use, and calling forward from inside that pool deadlocks
   * (tried: the first forward never returned). */
  def forward(model: Model, input: Activity): Activity = model.forward(input)
}
