// For users who have sbt: `sbt assembly` builds the same programs as `iotbench scala build` (which needs no sbt:
// it compiles with the Scala compiler shipped in the pyspark wheel against the jars already installed).
// BigDL 2.4 is Scala 2.12 / Spark 3; the Python environment runs pyspark 3.5.9 (Scala 2.12.18).

name := "iotbench-scala"
version := "0.1.0"
scalaVersion := "2.12.18"

val sparkVersion = "3.5.9"
val bigdlVersion = "2.4.0"

libraryDependencies ++= Seq(
  "org.apache.spark" %% "spark-core" % sparkVersion % "provided",
  "org.apache.spark" %% "spark-streaming" % sparkVersion % "provided",
  "org.apache.spark" %% "spark-mllib" % sparkVersion % "provided",
  // BigDL's dllib jar for Spark 3 (it bundles scopt); bigdl-core's native MKL jar comes with it.
  "com.intel.analytics.bigdl" % "bigdl-dllib-spark_3.1.3" % bigdlVersion % "provided"
)

// Thin jar: spark-submit --jars <bigdl dllib jar-with-dependencies>,<bigdl-core all jar> supplies BigDL at run time,
// as the original's --jars bigdl-...-jar-with-dependencies.jar did.
assembly / assemblyOption ~= { _.withIncludeScala(false) }
assembly / assemblyJarName := s"iotbench-scala-assembly-${version.value}.jar"
assembly / assemblyMergeStrategy := {
  case PathList("META-INF", _*) => MergeStrategy.discard
  case _ => MergeStrategy.first
}
